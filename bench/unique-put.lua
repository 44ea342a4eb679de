-- PUT /fragments/<random thread tag>-<n> with a JSON body holding SIZE bytes of content.
local size = tonumber(os.getenv("SIZE") or "1024")
local body = '{"content":"' .. string.rep("x", size - 14) .. '"}'
local headers = { ["Content-Type"] = "application/json" }
local counter = 0
local tag = nil
request = function()
  if tag == nil then
    math.randomseed(os.time() + math.floor(os.clock() * 1000000))
    tag = string.format("p%08x", math.random(0, 0x7fffffff))
  end
  counter = counter + 1
  return wrk.format("PUT", "/fragments/" .. tag .. "-" .. counter, headers, body)
end
