// Owns the one injection decision for a pod (template): skip, refuse or a JSON Patch (RFC 6902) of `add`
// operations. `portcullis inject` applies the patch to YAML in place, the webhook returns it to the API server.

import { annotations, describeProblems, readPodSettings } from './annotations.js';
import { adminPort, captureContainer, captureName, sidecarContainer, sidecarName, sidecarVolumes, statusPort, type InjectorOptions } from './sidecar.js';

export interface JsonPatchAdd {
  op: 'add';
  path: string;
  value: unknown;
}

export type InjectionResult =
  | { outcome: 'injected'; patch: JsonPatchAdd[]; warnings: string[] }
  /** Nothing to do: already injected, opted out, or a pod the sidecar cannot serve. */
  | { outcome: 'skipped'; reason: string }
  /** The pod asks for something invalid: say why, change nothing. */
  | { outcome: 'refused'; message: string };

interface ContainerLike {
  name?: unknown;
  ports?: { containerPort?: unknown; name?: unknown }[];
  readinessProbe?: unknown;
  livenessProbe?: unknown;
  startupProbe?: unknown;
}

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** RFC 6901 escaping of one path segment (`portcullis.dev/injected` -> `portcullis.dev~1injected`). */
export function pointerSegment(s: string): string {
  return s.replace(/~/g, '~0').replace(/\//g, '~1');
}

function containersOf(spec: Obj, key: 'containers' | 'initContainers'): ContainerLike[] {
  const list = spec[key];
  return Array.isArray(list) ? list.filter(isObj) as ContainerLike[] : [];
}

function stringMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (isObj(v)) for (const [k, val] of Object.entries(v)) if (typeof val === 'string') out[k] = val;
  return out;
}

/** HTTP/TCP probe ports of a container that transparent capture would redirect into the sidecar. */
function probePorts(c: ContainerLike): (number | string)[] {
  const ports: (number | string)[] = [];
  for (const p of [c.readinessProbe, c.livenessProbe, c.startupProbe]) {
    if (!isObj(p)) continue;
    for (const kind of ['httpGet', 'tcpSocket', 'grpc']) {
      const action = p[kind];
      if (isObj(action) && (typeof action.port === 'number' || typeof action.port === 'string')) ports.push(action.port);
    }
  }
  return ports;
}

/**
 * Decides the injection for one pod or pod template (`{metadata, spec}`); paths in the patch are relative
 * to that object. Pure: the same pod and options always give the same patch.
 */
export function injectPod(pod: unknown, options: InjectorOptions): InjectionResult {
  if (!isObj(pod) || !isObj(pod.spec)) return { outcome: 'refused', message: 'not a pod: no spec' };
  const spec = pod.spec;
  const metadata = isObj(pod.metadata) ? pod.metadata : undefined;
  const podAnnotations = stringMap(metadata?.annotations);

  const containers = containersOf(spec, 'containers');
  const initContainers = containersOf(spec, 'initContainers');
  if ([...containers, ...initContainers].some((c) => c.name === sidecarName)) {
    return { outcome: 'skipped', reason: `already injected: it has a container named ${sidecarName}` };
  }
  if (podAnnotations[annotations.inject]?.trim() === 'false') {
    return { outcome: 'skipped', reason: `opted out with ${annotations.inject}: "false"` };
  }
  if (spec.hostNetwork === true) {
    return { outcome: 'skipped', reason: 'hostNetwork pods share the node\'s network namespace; a per-pod sidecar cannot own their ports' };
  }

  const serviceAccount = typeof spec.serviceAccountName === 'string' && spec.serviceAccountName !== '' ? spec.serviceAccountName : 'default';
  const read = readPodSettings(podAnnotations, serviceAccount, { capture: options.captureByDefault, mode: options.mode, policyConfigMap: options.policyConfigMap });
  if ('problems' in read) return { outcome: 'refused', message: describeProblems(read.problems) };
  const settings = read.settings;

  // The sidecar's ports must be free in the pod's network namespace.
  const sidecarPorts = new Map<number, string>([[adminPort, 'admin'], [statusPort, 'status']]);
  for (const i of settings.inbound) sidecarPorts.set(i.listenPort, 'inbound');
  for (const o of settings.outbound) sidecarPorts.set(o.localPort, 'outbound');
  const problems: string[] = [];
  for (const c of [...containers, ...initContainers]) {
    for (const p of c.ports ?? []) {
      const port = typeof p.containerPort === 'number' ? p.containerPort : undefined;
      const role = port === undefined ? undefined : sidecarPorts.get(port);
      if (role) problems.push(`container ${String(c.name)} declares port ${port}, which the sidecar's ${role} listener needs (choose other ports with ${annotations.inboundPorts} / ${annotations.outbound})`);
    }
  }

  const volumes = sidecarVolumes(settings, options);
  const existingVolumes = Array.isArray(spec.volumes) ? spec.volumes.filter(isObj) : [];
  for (const v of volumes) {
    if (existingVolumes.some((e) => e.name === v.name)) problems.push(`the pod already has a volume named ${v.name}; rename it (names starting with portcullis- belong to the sidecar)`);
  }
  if (settings.capture && [...containers, ...initContainers].some((c) => c.name === captureName)) {
    problems.push(`the pod already has a container named ${captureName}`);
  }
  if (problems.length > 0) return { outcome: 'refused', message: problems.join('; ') };

  const warnings: string[] = [];
  if (settings.capture) {
    const captured = new Set(settings.inbound.map((i) => i.upstreamPort));
    for (const c of containers) {
      const named = new Map((c.ports ?? []).filter((p) => typeof p.name === 'string').map((p) => [p.name as string, p.containerPort]));
      for (const port of probePorts(c)) {
        const n = typeof port === 'number' ? port : named.get(port);
        if (typeof n === 'number' && captured.has(n)) warnings.push(`container ${String(c.name)} is probed on port ${n}, which transparent capture redirects to the mTLS listener: kubelet probes will fail (use an exec probe or a port outside ${annotations.inboundPorts})`);
      }
    }
  }

  const patch: JsonPatchAdd[] = [];
  const injectedKey = `/metadata/annotations/${pointerSegment(annotations.injected)}`;
  if (!metadata) patch.push({ op: 'add', path: '/metadata', value: { annotations: { [annotations.injected]: options.version } } });
  else if (!isObj(metadata.annotations)) patch.push({ op: 'add', path: '/metadata/annotations', value: { [annotations.injected]: options.version } });
  else patch.push({ op: 'add', path: injectedKey, value: options.version });

  // The sidecar goes first among init containers, so the pod's own init containers already have it
  // (and capture, when on, goes before the sidecar so the rules exist before anything listens).
  const added = settings.capture ? [captureContainer(settings, options), sidecarContainer(settings, options)] : [sidecarContainer(settings, options)];
  if (!Array.isArray(spec.initContainers)) patch.push({ op: 'add', path: '/spec/initContainers', value: added });
  else added.forEach((c, i) => patch.push({ op: 'add', path: `/spec/initContainers/${i}`, value: c }));

  if (!Array.isArray(spec.volumes)) patch.push({ op: 'add', path: '/spec/volumes', value: volumes });
  else for (const v of volumes) patch.push({ op: 'add', path: '/spec/volumes/-', value: v });

  return { outcome: 'injected', patch, warnings };
}
