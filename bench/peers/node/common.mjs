// What both Node peers share: the command line of iolite's bench_server.rs
// (--host, default 127.0.0.1; --port, or env PORT) and the startup lines.

// The value after `flag` on the command line (undefined when the flag is absent).
export function optionValue(name, defaultPort, flag) {
  const args = process.argv.slice(2);
  const i = args.indexOf(flag);
  if (i < 0) return undefined;
  if (i + 1 >= args.length) usage(name, defaultPort, `${flag} needs a value`);
  return args[i + 1];
}

export function hostPort(name, defaultPort) {
  const value = (flag) => optionValue(name, defaultPort, flag);
  const host = value("--host") ?? "127.0.0.1";
  const raw = value("--port") ?? process.env.PORT ?? String(defaultPort);
  const port = Number(raw);
  if (!/^\d+$/.test(raw) || port > 65535) usage(name, defaultPort, `port \`${raw}\` is not a port number`);
  return { host, port };
}

function usage(name, defaultPort, msg) {
  console.error(`${name}: ${msg}\nusage: ${name} [--host 127.0.0.1] [--port ${defaultPort}] (or env PORT)`);
  process.exit(2);
}

export function announce(name, server) {
  const a = server.address();
  console.log(`${name} pid ${process.pid}`);
  console.log(`listening on ${a.address}:${a.port}`);
}
