-- POST one canned request body over and over; print exact latency percentiles as JSON.
-- env: BENCH_BODY (file with the request body), BENCH_MODEL (replaces "MODEL" in it).
local file = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
local body = file:read("*a")
file:close()
body = body:gsub('"MODEL"', '"' .. (os.getenv("BENCH_MODEL") or "bench-model") .. '"')

wrk.method = "POST"
wrk.body = body
wrk.headers["content-type"] = "application/json"
wrk.headers["anthropic-version"] = "2023-06-01"
wrk.headers["x-api-key"] = "bench"

function done(summary, latency, requests)
  -- Latencies are in microseconds. One line, prefixed, so run.py can find it in wrk's output.
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "seconds": %.6f, "errors": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration / 1e6,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout +
      summary.errors.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
