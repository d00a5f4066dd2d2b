-- S3 PutObject of OBJECT_SIZE bytes (default 4 KiB), always the same key.
package.path = package.path .. ";" .. (os.getenv("BENCH_DIR") or ".") .. "/?.lua"
require "common"
local size = tonumber(os.getenv("OBJECT_SIZE") or "4096")
wrk.method = "PUT"
wrk.path = "/bench-bucket/object-" .. size
wrk.headers["Content-Type"] = "application/octet-stream"
wrk.headers["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD"
wrk.body = string.rep("a", size)
sigv4_headers("s3")
