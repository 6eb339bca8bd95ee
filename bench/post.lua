-- wrk script: POST one CDS Hooks request, each time with a fresh hookInstance.
--
--   wrk -s bench/post.lua <url>/cds-services/itb-patient-view -- BODY_FILE RUN [DELAY_MS]
--
-- BODY_FILE holds the request with the placeholder hookInstance below; each request splices
-- in "<thread>-<RUN>-...-<counter>" in a UUID's shape, so every call is a new audit record
-- (RUN, a number below 65536, must differ between wrk runs against one audit log).
-- DELAY_MS (optional) makes each connection wait that long on average between requests: with
-- C connections the offered rate is about C * 1000 / (DELAY_MS + latency) calls/s.
-- done() prints one JSON line (prefixed "WRK_JSON ") that bench/load.py reads.

local PLACEHOLDER = "00000000-0000-4000-8000-000000000000"
local prefix, suffix
local delay_ms = 0
local run = 0
local counter = 0
local threads = {}
local next_id = 0

function setup(thread)
  next_id = next_id + 1
  thread:set("thread_id", next_id)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() + thread_id)
  local f = assert(io.open(args[1], "rb"))
  local body = f:read("*all")
  f:close()
  local s, e = string.find(body, PLACEHOLDER, 1, true)
  assert(s, "placeholder hookInstance not found in " .. args[1])
  prefix = string.sub(body, 1, s - 1)
  suffix = string.sub(body, e + 1)
  run = tonumber(args[2])
  if args[3] then delay_ms = tonumber(args[3]) end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

-- Uniform in [0, 2 * DELAY_MS]: the same mean, but connections that all waited exactly
-- DELAY_MS would stay in step and arrive as bursts of C requests at once.
function delay()
  if delay_ms == 0 then return 0 end
  return math.random(0, 2 * delay_ms)
end

function request()
  counter = counter + 1
  local id = string.format("%08x-%04x-4000-8000-%012x", thread_id, run, counter)
  return wrk.format(nil, nil, nil, prefix .. id .. suffix)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p95":%d,"p99":%d,"max":%d,"mean":%.1f}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(95),
    latency:percentile(99), latency.max, latency.mean))
end
