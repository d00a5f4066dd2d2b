-- EventBridge PutEvents with one event on the default bus.
package.path = package.path .. ";" .. (os.getenv("BENCH_DIR") or ".") .. "/?.lua"
require "common"
wrk.method = "POST"
wrk.path = "/"
wrk.headers["Content-Type"] = "application/x-amz-json-1.1"
wrk.headers["X-Amz-Target"] = "AWSEvents.PutEvents"
wrk.body = '{"Entries":[{"Source":"bench.app","DetailType":"bench","Detail":"{\\"n\\":1}"}]}'
sigv4_headers("events")
