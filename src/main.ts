#!/usr/bin/env node
// Process entry: argv -> command module; exit codes (0 ok, 1 policy errors, 2 unusable input); signals
// belong to the `run` command. Each command lives in src/cli/<name>.ts and exports `main(argv)`.

type CommandMain = (argv: string[]) => Promise<number>;

const commands: Record<string, { summary: string; load: () => Promise<CommandMain> }> = {
  run: { summary: 'run the sidecar: mTLS listeners, policy enforcement, forwarding, admin endpoints', load: async () => (await import('./cli/run.js')).main },
  validate: { summary: 'report every problem in policy files (file:line:col severity code message)', load: async () => (await import('./cli/validate.js')).main },
  check: { summary: 'decide one request (or an NDJSON stream) against policies; prints JSON', load: async () => (await import('./cli/check.js')).main },
  replay: { summary: 'decide recorded decision-log traffic again under candidate policies; report what would change', load: async () => (await import('./cli/replay.js')).main },
  explain: { summary: 'show, for a person, which policies and rules decided a request and why', load: async () => (await import('./cli/explain.js')).main },
  inject: { summary: 'add the Portcullis native sidecar to Kubernetes manifests (-f FILE|-)', load: async () => (await import('./cli/inject.js')).main },
  webhook: { summary: 'serve the sidecar-injecting admission webhook (HTTPS), or print its manifests', load: async () => (await import('./cli/webhook.js')).main },
  certs: { summary: 'make a demo CA and issue X509-SVIDs (init, issue, --renew)', load: async () => (await import('./cli/certs.js')).main },
};

function usage(): string {
  const lines = ['usage: portcullis <command> [options]', '', 'commands:'];
  for (const [name, c] of Object.entries(commands)) lines.push(`  ${name.padEnd(10)} ${c.summary}`);
  lines.push('', 'Run `portcullis <command> --help` for the options of one command.');
  return lines.join('\n');
}

async function mainEntry(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage() + '\n');
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === 'version') {
    const { createRequire } = await import('node:module');
    const pkg = createRequire(import.meta.url)('../../package.json') as { version: string };
    process.stdout.write(`portcullis ${pkg.version}\n`);
    return 0;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`portcullis: unknown command '${name}'\n\n${usage()}\n`);
    return 2;
  }
  return (await command.load())(rest);
}

mainEntry(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => {
    process.stderr.write(`portcullis: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 2;
  },
);
