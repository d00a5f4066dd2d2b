-- CodePipeline GetPipeline of the pipeline `bench` (setup.py creates it).
package.path = package.path .. ";" .. (os.getenv("BENCH_DIR") or ".") .. "/?.lua"
require "common"
wrk.method = "POST"
wrk.path = "/"
wrk.headers["Content-Type"] = "application/x-amz-json-1.1"
wrk.headers["X-Amz-Target"] = "CodePipeline_20150709.GetPipeline"
wrk.body = '{"name":"bench"}'
sigv4_headers("codepipeline")
