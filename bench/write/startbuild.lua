-- CodeBuild StartBuild of the project `bench` (setup.py creates it; its builds wait QUEUED).
package.path = package.path .. ";" .. (os.getenv("BENCH_DIR") or ".") .. "/?.lua"
require "common"
wrk.method = "POST"
wrk.path = "/"
wrk.headers["Content-Type"] = "application/x-amz-json-1.1"
wrk.headers["X-Amz-Target"] = "CodeBuild_20161006.StartBuild"
wrk.body = '{"projectName":"bench"}'
sigv4_headers("codebuild")
