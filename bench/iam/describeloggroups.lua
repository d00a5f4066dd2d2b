-- CloudWatch Logs DescribeLogGroups (IAM: logs:DescribeLogGroups on *), signed with the access
-- key in ACCESS_KEY (an STS session's when SESSION_TOKEN is set). The signature is a dummy:
-- --auth open accepts any signature and attributes the request to the key.
local key = os.getenv("ACCESS_KEY") or "test"
local token = os.getenv("SESSION_TOKEN")
wrk.method = "POST"
wrk.path = "/"
wrk.headers["Content-Type"] = "application/x-amz-json-1.1"
wrk.headers["X-Amz-Target"] = "Logs_20140328.DescribeLogGroups"
wrk.headers["X-Amz-Date"] = os.date("!%Y%m%dT%H%M%SZ")
wrk.headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=" .. key .. "/" .. os.date("!%Y%m%d") ..
  "/eu-west-1/logs/aws4_request, SignedHeaders=host;x-amz-date, Signature=" .. string.rep("0", 64)
if token and token ~= "" then
  wrk.headers["X-Amz-Security-Token"] = token
end
wrk.body = '{"limit":1}'

function done(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout
  io.write(string.format("RESULT rps=%.1f p50=%.3f p99=%.3f non2xx=%d errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, summary.errors.status, errors))
end
