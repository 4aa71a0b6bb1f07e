-- wrk calls done() once at the end of a run: print the summary as one line of JSON.
-- Latencies are in microseconds; errors.status counts answers with an HTTP status of 400 or more.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "errors": {"connect": %d, "read": %d, '
      .. '"write": %d, "timeout": %d, "status": %d}, "latency_us": {"p50": %d, '
      .. '"p90": %d, "p99": %d, "max": %d, "mean": %.1f}}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
