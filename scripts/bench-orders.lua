-- wrk script of scripts/bench-orders.sh: closed-loop buyers placing checkouts.
--
-- Run as `wrk -t N -c N ... -s scripts/bench-orders.lua URL -- TOKENS PRODUCTS RUN_ID`: one
-- connection per thread, so each thread is one buyer (token N of TOKENS, one access token a
-- line) that sends its next checkout when the last one answered. Every request is a
-- `POST /api/v1/checkouts` with 1 to 3 distinct products of PRODUCTS (one product id a line),
-- quantity 1 or 2, and an Idempotency-Key unique to the run, the buyer and the request.

local threads = {}
local next_id = 0

function setup(thread)
  next_id = next_id + 1
  thread:set("buyer_no", next_id)
  table.insert(threads, thread)
end

local function read_lines(path)
  local out = {}
  local f = assert(io.open(path, "r"), "cannot open " .. path)
  for line in f:lines() do
    if line ~= "" then
      table.insert(out, line)
    end
  end
  f:close()
  return out
end

function init(args)
  local tokens = read_lines(args[1])
  products = read_lines(args[2])
  run_id = args[3]
  token = tokens[((buyer_no - 1) % #tokens) + 1]
  math.randomseed(buyer_no * 7919 + os.time())
  sent = 0
  statuses = {}
end

function request()
  sent = sent + 1
  local n = math.random(1, 3)
  local chosen, lines = {}, {}
  while #lines < n do
    local i = math.random(1, #products)
    if not chosen[i] then
      chosen[i] = true
      table.insert(lines, string.format('{"product_id":"%s","quantity":%d}', products[i], math.random(1, 2)))
    end
  end
  local body = '{"lines":[' .. table.concat(lines, ",") .. '],"delivery":{"method":"pickup"}}'
  return wrk.format("POST", "/api/v1/checkouts", {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = string.format("bench-%s-%d-%d", run_id, buyer_no, sent),
  }, body)
end

function response(status, headers, body)
  local k = tostring(status)
  statuses[k] = (statuses[k] or 0) + 1
end

function done(summary, latency, requests)
  local by_status = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses") or {}
    for k, v in pairs(s) do
      by_status[k] = (by_status[k] or 0) + v
    end
  end
  local secs = summary.duration / 1e6
  local ok = by_status["201"] or 0
  io.write(string.format("checkouts answered: %d in %.1f s\n", summary.requests, secs))
  io.write(string.format("checkouts 201/s: %.1f\n", ok / secs))
  io.write(string.format("latency p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
  local keys = {}
  for k in pairs(by_status) do table.insert(keys, k) end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do table.insert(parts, k .. ": " .. by_status[k]) end
  io.write("responses by status: " .. table.concat(parts, ", ") .. "\n")
  local e = summary.errors
  io.write(string.format("socket errors: connect %d, read %d, write %d, timeout %d\n",
    e.connect, e.read, e.write, e.timeout))
end
