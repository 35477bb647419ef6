// Owns the install manifests of the admission webhook (ServiceAccount, Deployment, Service, PDB,
// MutatingWebhookConfiguration, optional cert-manager Issuer/Certificate), admissionregistration.k8s.io/v1.

import { stringify } from 'yaml';
import { sidecarUid } from './sidecar.js';

export interface WebhookManifestOptions {
  namespace: string;
  /** Image running `portcullis webhook` (the Portcullis image). */
  image: string;
  /** base64 PEM of the CA that signed the serving certificate; absent with certManager. */
  caBundle: string | undefined;
  /** Issue the serving certificate with cert-manager and let its CA injector fill the caBundle. */
  certManager: boolean;
  failurePolicy: 'Fail' | 'Ignore';
  /** Injector flags passed through to `portcullis webhook` (image, mode, capture, ...). */
  injectorArgs: string[];
}

export const webhookName = 'portcullis-webhook';
export const namespaceLabel = 'portcullis.dev/inject';
const tlsSecret = 'portcullis-webhook-tls';
const servingPort = 9443;

export function webhookManifestObjects(o: WebhookManifestOptions): Record<string, unknown>[] {
  const labels = { 'app.kubernetes.io/name': webhookName, 'app.kubernetes.io/part-of': 'portcullis' };
  const objects: Record<string, unknown>[] = [];
  objects.push({
    apiVersion: 'v1',
    kind: 'Namespace',
    // Never inject the injector's own pods.
    metadata: { name: o.namespace, labels: { [namespaceLabel]: 'disabled' } },
  });
  objects.push({
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name: webhookName, namespace: o.namespace, labels },
    // The webhook reads nothing from the API server: no token, and no Role or ClusterRole is bound to it.
    automountServiceAccountToken: false,
  });
  if (o.certManager) {
    objects.push({
      apiVersion: 'cert-manager.io/v1',
      kind: 'Issuer',
      metadata: { name: `${webhookName}-selfsigned`, namespace: o.namespace, labels },
      spec: { selfSigned: {} },
    });
    objects.push({
      apiVersion: 'cert-manager.io/v1',
      kind: 'Certificate',
      metadata: { name: webhookName, namespace: o.namespace, labels },
      spec: {
        secretName: tlsSecret,
        dnsNames: [`${webhookName}.${o.namespace}.svc`, `${webhookName}.${o.namespace}.svc.cluster.local`],
        duration: '2160h',
        renewBefore: '360h',
        privateKey: { algorithm: 'ECDSA', size: 256, rotationPolicy: 'Always' },
        issuerRef: { name: `${webhookName}-selfsigned`, kind: 'Issuer' },
      },
    });
  }
  objects.push({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: webhookName, namespace: o.namespace, labels },
    spec: {
      replicas: 2,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          serviceAccountName: webhookName,
          automountServiceAccountToken: false,
          securityContext: { runAsNonRoot: true, runAsUser: sidecarUid, runAsGroup: sidecarUid, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [{
            name: 'webhook',
            image: o.image,
            args: ['webhook', '--listen', `0.0.0.0:${servingPort}`, '--tls-cert', '/etc/portcullis/webhook-tls/tls.crt', '--tls-key', '/etc/portcullis/webhook-tls/tls.key', ...o.injectorArgs],
            ports: [{ name: 'https', containerPort: servingPort, protocol: 'TCP' }],
            readinessProbe: { httpGet: { path: '/healthz', port: servingPort, scheme: 'HTTPS' }, periodSeconds: 5 },
            livenessProbe: { httpGet: { path: '/healthz', port: servingPort, scheme: 'HTTPS' }, periodSeconds: 10 },
            securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
            resources: { requests: { cpu: '20m', memory: '64Mi' }, limits: { memory: '192Mi' } },
            volumeMounts: [{ name: 'tls', mountPath: '/etc/portcullis/webhook-tls', readOnly: true }],
          }],
          volumes: [{ name: 'tls', secret: { secretName: tlsSecret, defaultMode: 0o444 } }],
        },
      },
    },
  });
  objects.push({
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: { name: webhookName, namespace: o.namespace, labels },
    spec: { minAvailable: 1, selector: { matchLabels: labels } },
  });
  objects.push({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: webhookName, namespace: o.namespace, labels },
    spec: { selector: labels, ports: [{ name: 'https', port: 443, targetPort: 'https', protocol: 'TCP' }] },
  });
  const clientConfig = (): Record<string, unknown> => ({
    service: { name: webhookName, namespace: o.namespace, path: '/inject', port: 443 },
    ...(o.caBundle !== undefined ? { caBundle: o.caBundle } : {}),
  });
  const common = {
    rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }],
    sideEffects: 'None',
    admissionReviewVersions: ['v1'],
    failurePolicy: o.failurePolicy,
    // Re-run after later webhooks add containers: injection is idempotent, so a second call is harmless.
    reinvocationPolicy: 'IfNeeded',
    timeoutSeconds: 10,
  };
  const systemNamespaces = ['kube-system', 'kube-public', 'kube-node-lease', o.namespace];
  objects.push({
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: {
      name: webhookName,
      labels,
      ...(o.certManager ? { annotations: { 'cert-manager.io/inject-ca-from': `${o.namespace}/${webhookName}` } } : {}),
    },
    webhooks: [
      {
        // Every pod of a namespace labelled portcullis.dev/inject=enabled, unless the pod is labelled "false".
        name: 'namespace.inject.portcullis.dev',
        clientConfig: clientConfig(),
        namespaceSelector: { matchLabels: { [namespaceLabel]: 'enabled' } },
        objectSelector: { matchExpressions: [{ key: namespaceLabel, operator: 'NotIn', values: ['false'] }] },
        ...common,
      },
      {
        // Single pods labelled portcullis.dev/inject=true in namespaces that are neither enabled nor disabled.
        name: 'pod.inject.portcullis.dev',
        clientConfig: clientConfig(),
        namespaceSelector: {
          matchExpressions: [
            { key: namespaceLabel, operator: 'NotIn', values: ['enabled', 'disabled'] },
            { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: systemNamespaces },
          ],
        },
        objectSelector: { matchLabels: { [namespaceLabel]: 'true' } },
        ...common,
      },
    ],
  });
  return objects;
}

export function webhookManifestsYaml(o: WebhookManifestOptions): string {
  const header = [
    '# Portcullis sidecar injector: generated by `portcullis webhook manifests`; regenerate rather than edit.',
    o.certManager
      ? '# The serving certificate comes from cert-manager; its CA injector fills the caBundle.'
      : `# The serving certificate is the Secret ${tlsSecret} (from \`portcullis certs webhook\`).`,
  ].join('\n');
  return header + '\n' + webhookManifestObjects(o).map((obj) => stringify(obj, { lineWidth: 0, aliasDuplicateObjects: false })).join('---\n');
}
