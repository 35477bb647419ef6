// Owns the flags shared by `portcullis inject` and `portcullis webhook` (image, capture, mode, trust domain,
// ConfigMap names) and their defaults, so both entrances build the same sidecar from the same flags.

import { createRequire } from 'node:module';
import { checkTrustDomain } from '../identity/spiffe.js';
import type { InjectorOptions } from './sidecar.js';

export function portcullisVersion(): string {
  const require = createRequire(import.meta.url);
  for (const p of ['../../package.json', '../../../package.json']) {
    try { return (require(p) as { version: string }).version; } catch { /* try the next layout */ }
  }
  return '0.0.0';
}

/** node:util parseArgs option table for the shared flags. */
export const injectorFlagSpec = {
  image: { type: 'string' },
  'capture-image': { type: 'string' },
  capture: { type: 'boolean' },
  mode: { type: 'string' },
  'trust-domain': { type: 'string' },
  'policies-configmap': { type: 'string' },
  'mesh-policies-configmap': { type: 'string' },
} as const;

export const injectorFlagsHelp = `sidecar options (the same for inject and webhook):
  --image IMAGE                    sidecar image (default portcullis:VERSION)
  --mode enforce|audit             mode for pods without portcullis.dev/mode (default enforce)
  --capture                        transparent inbound capture with iptables for pods without
                                   portcullis.dev/capture (default off: the Service targets the sidecar)
  --capture-image IMAGE            image with sh and iptables for the capture init container
                                   (default portcullis-capture:VERSION)
  --trust-domain TD                mesh trust domain (default cluster.local)
  --policies-configmap NAME        policy ConfigMap for pods without portcullis.dev/policies
                                   (default portcullis-policies)
  --mesh-policies-configmap NAME   optional ConfigMap with the mesh-wide (root namespace) policies
                                   (default portcullis-mesh-policies)`;

export type InjectorFlagValues = { [K in keyof typeof injectorFlagSpec]?: (typeof injectorFlagSpec)[K]['type'] extends 'boolean' ? boolean : string };

const objectName = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Flags -> options, or the first problem as a sentence. */
export function injectorOptionsFrom(values: InjectorFlagValues): InjectorOptions | string {
  const version = portcullisVersion();
  const mode = values.mode ?? 'enforce';
  if (mode !== 'enforce' && mode !== 'audit') return `--mode must be enforce or audit, not '${mode}'`;
  const trustDomain = values['trust-domain'] ?? 'cluster.local';
  const tdError = checkTrustDomain(trustDomain);
  if (tdError) return `invalid --trust-domain '${trustDomain}': ${tdError}`;
  const policyConfigMap = values['policies-configmap'] ?? 'portcullis-policies';
  const meshPolicyConfigMap = values['mesh-policies-configmap'] ?? 'portcullis-mesh-policies';
  for (const [flag, name] of [['--policies-configmap', policyConfigMap], ['--mesh-policies-configmap', meshPolicyConfigMap]] as const) {
    if (!objectName.test(name) || name.length > 253) return `${flag} '${name}' is not a valid ConfigMap name`;
  }
  const image = values.image ?? `portcullis:${version}`;
  const captureImage = values['capture-image'] ?? `portcullis-capture:${version}`;
  if (image.trim() === '' || /\s/.test(image)) return `--image '${image}' is not an image reference`;
  if (captureImage.trim() === '' || /\s/.test(captureImage)) return `--capture-image '${captureImage}' is not an image reference`;
  return { image, captureImage, captureByDefault: values.capture === true, mode, trustDomain, policyConfigMap, meshPolicyConfigMap, version };
}
