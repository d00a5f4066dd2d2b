-- Shared by the write benchmarks and bench/iam: a syntactically valid SigV4 Authorization
-- header (codeyard's open auth mode and moto accept any signature on a signed request and
-- attribute it to the key) and one machine-readable result line.
-- `key` defaults to a benchmark key; `token` (an STS session's) is sent when given.
function sigv4_headers(service, key, token)
  local date = os.date("!%Y%m%d")
  wrk.headers["X-Amz-Date"] = os.date("!%Y%m%dT%H%M%SZ")
  wrk.headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=" .. (key or "AKIDBENCHMARK") .. "/" ..
    date .. "/eu-west-1/" .. service .. "/aws4_request, SignedHeaders=host;x-amz-date, Signature=" ..
    string.rep("0", 64)
  if token and token ~= "" then
    wrk.headers["X-Amz-Security-Token"] = token
  end
end

function done(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout
  io.write(string.format("RESULT rps=%.1f p50=%.3f p99=%.3f non2xx=%d errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, summary.errors.status, errors))
end
