-- GET /fragments/<PREFIX><n> for random n in [0, COUNT).
local count = tonumber(os.getenv("COUNT") or "10000")
local prefix = os.getenv("PREFIX") or "f"
local seeded = false
request = function()
  if not seeded then
    math.randomseed(os.time() + math.floor(os.clock() * 1000000))
    seeded = true
  end
  return wrk.format("GET", "/fragments/" .. prefix .. math.random(0, count - 1))
end
