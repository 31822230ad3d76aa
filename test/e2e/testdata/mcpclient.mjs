// An MCP client built on the official TypeScript SDK that drives
// 'banger mcp' over stdio the way an agent would, for TestMCPClient.
// Usage: node mcpclient.mjs COMMAND [ARG...]  (the command starts the
// server). It prints one JSON object of what it saw on stdout; progress
// and diagnostics go to stderr. Env: MCP_IMAGE, MCP_THEIRS (a VM the
// client did not create).
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const [command, ...args] = process.argv.slice(2);
const transport = new StdioClientTransport({ command, args, env: process.env, stderr: "inherit" });
const client = new Client({ name: "banger-e2e", version: "1.0.0" });
const long = { timeout: 15 * 60 * 1000, resetTimeoutOnProgress: true };
const seen = { progress: 0 };

function text(res) {
  return (res.content || []).filter((c) => c.type === "text").map((c) => c.text).join("\n");
}

// call returns a tool's structured result, failing on a tool error.
async function call(name, args, opts = {}) {
  const res = await client.callTool({ name, arguments: args }, undefined, opts);
  if (res.isError) {
    throw new Error(`${name} failed: ${text(res)}`);
  }
  return res.structuredContent;
}

await client.connect(transport);
try {
  seen.tools = (await client.listTools()).tools.map((t) => t.name).sort();
  const vm = await call("vm_create", { name: "agentvm", image: process.env.MCP_IMAGE, memory_mib: 512, disk_mib: 1024 }, {
    ...long,
    onprogress: (p) => {
      seen.progress++;
      console.error(`progress ${p.progress}: ${p.message ?? ""}`);
    },
  });
  seen.created = { name: vm.name, state: vm.state, owned: vm.owned };
  const uname = await call("vm_exec", { vm: "agentvm", argv: ["uname", "-r"] }, long);
  seen.uname = { stdout: uname.stdout, exit_code: uname.exit_code };
  await call("file_write", { vm: "agentvm", path: "/root/mcp/hello.txt", content: "hello from an agent\n" });
  const read = await call("file_read", { vm: "agentvm", path: "/root/mcp/hello.txt" });
  seen.read = read.content;
  const refused = await client.callTool({ name: "vm_exec", arguments: { vm: process.env.MCP_THEIRS, command: "true" } });
  seen.refused = { isError: !!refused.isError, text: text(refused) };
  seen.listed = (await call("vm_list", {})).vms.map((v) => v.name);
  seen.deleted = (await call("vm_delete", { vm: "agentvm" }, long)).deleted;
  seen.after = (await call("vm_list", {})).vms.map((v) => v.name);
} catch (err) {
  seen.error = String(err && err.stack ? err.stack : err);
} finally {
  await client.close();
}
console.log(JSON.stringify(seen));
