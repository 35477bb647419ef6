// Owns `portcullis webhook` (serve admission.k8s.io/v1 AdmissionReview over HTTPS, draining on SIGTERM) and
// `portcullis webhook manifests` (print the install manifests with the same sidecar flags).

import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { parseHostPort } from '../config/load.js';
import { injectorFlagSpec, injectorFlagsHelp, injectorOptionsFrom, portcullisVersion, type InjectorFlagValues } from '../kubernetes/options.js';
import { webhookManifestsYaml } from '../kubernetes/webhook-manifests.js';
import { startWebhookServer } from '../kubernetes/webhook-server.js';

const help = `usage: portcullis webhook --tls-cert FILE --tls-key FILE [--listen HOST:PORT] [options]
       portcullis webhook manifests [--namespace NS] (--ca-bundle B64 | --cert-manager) [options]

The first form serves the mutating admission webhook: POST /inject takes an admission.k8s.io/v1
AdmissionReview for a pod CREATE and answers with a JSON Patch that adds the Portcullis sidecar (the
same change \`portcullis inject\` makes), or refuses the pod when its portcullis.dev/ annotations are
invalid. GET /healthz is for probes. The certificate files are re-read when they change.

The second form prints the manifests that install it (Namespace, ServiceAccount, Deployment,
PodDisruptionBudget, Service, MutatingWebhookConfiguration).

serve options:
  --listen HOST:PORT               address to serve on (default 0.0.0.0:9443)
  --tls-cert FILE, --tls-key FILE  serving certificate for SERVICE.NAMESPACE.svc (PEM)
manifests options:
  --namespace NS                   namespace of the webhook (default portcullis-system)
  --ca-bundle B64                  base64 CA bundle (the output of \`portcullis certs webhook\`)
  --cert-manager                   issue the certificate with cert-manager and its CA injector instead
  --failure-policy Fail|Ignore     what the API server does when the webhook is down (default Fail:
                                   pods in opted-in namespaces are not created without their sidecar)
  --webhook-image IMAGE            image running the webhook (default the --image)
${injectorFlagsHelp}
  -h, --help                       show this help
`;

/** The injector flags as given, to pass through to the webhook's own args. */
function injectorArgsOf(values: InjectorFlagValues): string[] {
  const args: string[] = [];
  for (const key of Object.keys(injectorFlagSpec) as (keyof typeof injectorFlagSpec)[]) {
    const v = values[key];
    if (v === true) args.push(`--${key}`);
    else if (typeof v === 'string') args.push(`--${key}`, v);
  }
  return args;
}

async function manifests(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      ...injectorFlagSpec,
      namespace: { type: 'string', default: 'portcullis-system' },
      'ca-bundle': { type: 'string' },
      'cert-manager': { type: 'boolean', default: false },
      'failure-policy': { type: 'string', default: 'Fail' },
      'webhook-image': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) { process.stdout.write(help); return 0; }
  const options = injectorOptionsFrom(values);
  if (typeof options === 'string') { process.stderr.write(`portcullis webhook: ${options}\n`); return 2; }
  const failurePolicy = values['failure-policy'];
  if (failurePolicy !== 'Fail' && failurePolicy !== 'Ignore') { process.stderr.write(`portcullis webhook: --failure-policy must be Fail or Ignore\n`); return 2; }
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(values.namespace)) { process.stderr.write(`portcullis webhook: --namespace '${values.namespace}' is not a valid namespace name\n`); return 2; }
  const caBundle = values['ca-bundle']?.trim();
  if (values['cert-manager'] === (caBundle !== undefined)) {
    process.stderr.write('portcullis webhook: give exactly one of --ca-bundle (from `portcullis certs webhook`) or --cert-manager\n');
    return 2;
  }
  if (caBundle !== undefined && !/-----BEGIN CERTIFICATE-----/.test(Buffer.from(caBundle, 'base64').toString('utf8'))) {
    process.stderr.write('portcullis webhook: --ca-bundle is not base64 of a PEM certificate (use the output of `portcullis certs webhook`)\n');
    return 2;
  }
  process.stdout.write(webhookManifestsYaml({
    namespace: values.namespace,
    image: values['webhook-image'] ?? options.image,
    caBundle,
    certManager: values['cert-manager'],
    failurePolicy,
    injectorArgs: injectorArgsOf(values),
  }));
  return 0;
}

async function serve(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      ...injectorFlagSpec,
      listen: { type: 'string', default: '0.0.0.0:9443' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) { process.stdout.write(help); return 0; }
  const options = injectorOptionsFrom(values);
  if (typeof options === 'string') { process.stderr.write(`portcullis webhook: ${options}\n`); return 2; }
  const listen = parseHostPort(values.listen);
  if (typeof listen === 'string') { process.stderr.write(`portcullis webhook: --listen: ${listen}\n`); return 2; }
  if (!values['tls-cert'] || !values['tls-key']) { process.stderr.write('portcullis webhook: --tls-cert and --tls-key are required (see `portcullis certs webhook`)\n'); return 2; }
  const log = (entry: Record<string, unknown>): void => { process.stderr.write(JSON.stringify({ time: new Date().toISOString(), ...entry }) + '\n'); };
  let server;
  try {
    await readFile(values['tls-cert']);
    server = await startWebhookServer({ host: listen.host, port: listen.port, certFile: values['tls-cert'], keyFile: values['tls-key'], injector: options, log });
  } catch (err) {
    process.stderr.write(`portcullis webhook: cannot start: ${(err as Error).message}\n`);
    return 2;
  }
  const a = server.address();
  log({ level: 'info', msg: 'webhook listening', address: `${a.address}:${a.port}`, version: portcullisVersion(), image: options.image });
  return new Promise<number>((resolve) => {
    const stop = (): void => { void server.close().then(() => resolve(0)); };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}

export async function main(argv: string[]): Promise<number> {
  try {
    if (argv[0] === 'manifests') return await manifests(argv.slice(1));
    return await serve(argv);
  } catch (err) {
    const code = String((err as { code?: unknown }).code);
    process.stderr.write(`portcullis webhook: ${(err as Error).message}\n${code.startsWith('ERR_PARSE_ARGS') ? `\n${help}` : ''}`);
    return 2;
  }
}
