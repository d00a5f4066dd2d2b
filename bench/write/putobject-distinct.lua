-- S3 PutObject of OBJECT_SIZE bytes (default 4 KiB), a new key every request (no two writers
-- ever race on one key's compare-and-swap).
package.path = package.path .. ";" .. (os.getenv("BENCH_DIR") or ".") .. "/?.lua"
require "common"
local size = tonumber(os.getenv("OBJECT_SIZE") or "4096")
wrk.method = "PUT"
wrk.headers["Content-Type"] = "application/octet-stream"
wrk.headers["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD"
wrk.body = string.rep("a", size)
sigv4_headers("s3")
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, "/bench-bucket/distinct-" .. math.random(1, 2000000000) .. "-" .. n)
end
