// Owns what the injector adds to a pod: the native sidecar container, the optional iptables capture init
// container and their volumes (Downward API, policy ConfigMaps, SVID Secret or CSI). Kubernetes core/v1 types.

import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IVolume } from 'kubernetes-models/v1/Volume';
import type { PodSettings } from './annotations.js';

export interface InjectorOptions {
  /** Sidecar image, e.g. `portcullis:0.1.0`. */
  image: string;
  /** Image with `sh` and `iptables` for the capture init container (only used when capture is on). */
  captureImage: string;
  /** Transparent capture for pods that do not say (default false: the Service targets the sidecar). */
  captureByDefault: boolean;
  mode: 'enforce' | 'audit';
  trustDomain: string;
  /** ConfigMap in the pod's namespace with its policies, when the pod does not name any. */
  policyConfigMap: string;
  /** Optional ConfigMap with the mesh-wide set (the root namespace's policies, copied per namespace). */
  meshPolicyConfigMap: string;
  /** Written into the `portcullis.dev/injected` annotation. */
  version: string;
}

export const sidecarName = 'portcullis';
export const captureName = 'portcullis-capture';
export const adminPort = 15000;
export const statusPort = 15021;
/** uid/gid of the image (Dockerfile `USER 10001:10001`). */
export const sidecarUid = 10001;

export const paths = {
  podinfo: '/etc/portcullis/podinfo',
  policies: '/etc/portcullis/policies',
  meshPolicies: '/etc/portcullis/mesh-policies',
  certs: '/etc/portcullis/certs',
} as const;

export const volumeNames = {
  podinfo: 'portcullis-podinfo',
  meshPolicies: 'portcullis-mesh-policies',
  certs: 'portcullis-certs',
  xtables: 'portcullis-xtables',
} as const;

/** The first policy ConfigMap's volume is `portcullis-policies`, further ones `portcullis-policies-2`, ... */
export function policyVolumeName(index: number): string {
  return index === 0 ? 'portcullis-policies' : `portcullis-policies-${index + 1}`;
}

function upstreamUrl(protocol: 'http' | 'h2c' | 'tcp', port: number): string {
  return `${protocol}://127.0.0.1:${port}`;
}

/** `portcullis run` arguments: everything comes from flags, volumes and the Downward API, no per-pod ConfigMap. */
export function sidecarArgs(settings: PodSettings, options: InjectorOptions): string[] {
  const args = ['run', '--mode', settings.mode];
  for (const i of settings.inbound) {
    const fields = [`name=inbound-${i.listenPort}`, `listen=0.0.0.0:${i.listenPort}`, `upstream=${upstreamUrl(i.protocol, i.upstreamPort)}`];
    if (i.protocol === 'tcp') fields.push('protocol=tcp');
    args.push('--listener', fields.join(','));
  }
  for (const o of settings.outbound) {
    args.push('--outbound', `name=outbound-${o.localPort},listen=127.0.0.1:${o.localPort},target=${o.target},expectIdentity=${o.expectIdentity}`);
  }
  args.push('--admin', `127.0.0.1:${adminPort}`, '--status-listen', `0.0.0.0:${statusPort}`);
  settings.policyConfigMaps.forEach((name) => args.push('--policies', `${paths.policies}/${name}`));
  args.push('--policies', paths.meshPolicies);
  args.push('--cert', `${paths.certs}/tls.crt`, '--key', `${paths.certs}/tls.key`, '--trust-bundle', `${paths.certs}/ca.crt`);
  args.push('--trust-domain', options.trustDomain);
  // Namespace, labels and annotations are files kept current by the kubelet; the service account is not
  // offered as a Downward API file, so it comes in as an environment variable expanded by the kubelet.
  args.push('--workload-from', paths.podinfo, '--service-account', '$(PORTCULLIS_SERVICE_ACCOUNT)');
  if (settings.defaultPolicy !== undefined) args.push('--default-policy', settings.defaultPolicy);
  if (settings.drainDelay !== undefined) args.push('--drain-delay', settings.drainDelay);
  return args;
}

export function sidecarContainer(settings: PodSettings, options: InjectorOptions): IContainer {
  const probe = (path: string, periodSeconds: number, failureThreshold: number) => ({
    httpGet: { path, port: statusPort },
    periodSeconds,
    failureThreshold,
    timeoutSeconds: 1,
  });
  return {
    name: sidecarName,
    image: options.image,
    // Native sidecar (Kubernetes >= 1.29): starts and becomes ready before the app, stops after it.
    restartPolicy: 'Always',
    args: sidecarArgs(settings, options),
    env: [{ name: 'PORTCULLIS_SERVICE_ACCOUNT', valueFrom: { fieldRef: { fieldPath: 'spec.serviceAccountName' } } }],
    ports: [
      ...settings.inbound.map((i) => ({ name: `pcl-in-${i.listenPort}`, containerPort: i.listenPort, protocol: 'TCP' as const })),
      { name: 'pcl-status', containerPort: statusPort, protocol: 'TCP' as const },
    ],
    startupProbe: probe('/ready', 1, 60),
    readinessProbe: probe('/ready', 5, 3),
    livenessProbe: probe('/live', 10, 3),
    securityContext: {
      runAsNonRoot: true,
      runAsUser: sidecarUid,
      runAsGroup: sidecarUid,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    resources: {
      requests: { cpu: '50m', memory: '64Mi' },
      limits: { memory: '256Mi' },
    },
    volumeMounts: [
      { name: volumeNames.podinfo, mountPath: paths.podinfo, readOnly: true },
      ...settings.policyConfigMaps.map((name, i) => ({ name: policyVolumeName(i), mountPath: `${paths.policies}/${name}`, readOnly: true })),
      { name: volumeNames.meshPolicies, mountPath: paths.meshPolicies, readOnly: true },
      { name: volumeNames.certs, mountPath: paths.certs, readOnly: true },
    ],
  };
}

/** iptables rules for inbound capture: traffic from outside the pod to an app port goes to the sidecar. */
export function captureScript(settings: PodSettings): string {
  const lines = [
    'set -eu',
    'iptables -w -t nat -N PORTCULLIS_INBOUND 2>/dev/null || iptables -w -t nat -F PORTCULLIS_INBOUND',
    // PREROUTING sees only traffic arriving from outside the pod; the sidecar's own connections to
    // 127.0.0.1 go through OUTPUT and are never redirected back to it.
    ...settings.inbound.map((i) => `iptables -w -t nat -A PORTCULLIS_INBOUND -p tcp --dport ${i.upstreamPort} -j REDIRECT --to-ports ${i.listenPort}`),
    'iptables -w -t nat -C PREROUTING -p tcp -j PORTCULLIS_INBOUND 2>/dev/null || iptables -w -t nat -A PREROUTING -p tcp -j PORTCULLIS_INBOUND',
  ];
  return lines.join('\n') + '\n';
}

export function captureContainer(settings: PodSettings, options: InjectorOptions): IContainer {
  return {
    name: captureName,
    image: options.captureImage,
    command: ['sh', '-c', captureScript(settings)],
    securityContext: {
      // iptables needs root and NET_ADMIN/NET_RAW in the pod's network namespace, nothing else.
      runAsNonRoot: false,
      runAsUser: 0,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] },
    },
    resources: {
      requests: { cpu: '10m', memory: '16Mi' },
      limits: { memory: '64Mi' },
    },
    volumeMounts: [{ name: volumeNames.xtables, mountPath: '/run' }],
  };
}

export function sidecarVolumes(settings: PodSettings, options: InjectorOptions): IVolume[] {
  const volumes: IVolume[] = [
    {
      name: volumeNames.podinfo,
      downwardAPI: {
        items: [
          { path: 'namespace', fieldRef: { fieldPath: 'metadata.namespace' } },
          { path: 'name', fieldRef: { fieldPath: 'metadata.name' } },
          { path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } },
          { path: 'annotations', fieldRef: { fieldPath: 'metadata.annotations' } },
        ],
      },
    },
    ...settings.policyConfigMaps.map((name, i) => ({ name: policyVolumeName(i), configMap: { name } })),
    { name: volumeNames.meshPolicies, configMap: { name: options.meshPolicyConfigMap, optional: true } },
  ];
  if (settings.certs.kind === 'secret') {
    // Only the sidecar mounts this volume, so the key may be world-readable inside it: the image's uid
    // needs no fsGroup on the pod (which would change the app's file ownership).
    volumes.push({ name: volumeNames.certs, secret: { secretName: settings.certs.secretName, defaultMode: 0o444 } });
  } else {
    volumes.push({
      name: volumeNames.certs,
      csi: { driver: 'spiffe.csi.cert-manager.io', readOnly: true, volumeAttributes: { 'spiffe.csi.cert-manager.io/fs-group': String(sidecarUid) } },
    });
  }
  if (settings.capture) volumes.push({ name: volumeNames.xtables, emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } });
  return volumes;
}
