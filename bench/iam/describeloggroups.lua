-- CloudWatch Logs DescribeLogGroups (IAM: logs:DescribeLogGroups on *), signed with the access
-- key in ACCESS_KEY (an STS session's when SESSION_TOKEN is set). The signature is a dummy:
-- --auth open accepts any signature and attributes the request to the key.
-- BENCH_DIR names bench/write, whose common.lua has the header and result helpers.
package.path = package.path .. ";" .. (os.getenv("BENCH_DIR") or "../write") .. "/?.lua"
require "common"
wrk.method = "POST"
wrk.path = "/"
wrk.headers["Content-Type"] = "application/x-amz-json-1.1"
wrk.headers["X-Amz-Target"] = "Logs_20140328.DescribeLogGroups"
sigv4_headers("logs", os.getenv("ACCESS_KEY") or "test", os.getenv("SESSION_TOKEN"))
wrk.body = '{"limit":1}'
