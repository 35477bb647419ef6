// Owns the list of dialects compile.ts runs, in tier order (a request meets Istio's tiers, then Linkerd's, then Kubernetes', then Calico's, then Cilium's).
// Adding a dialect is one line here plus its folder (docs/engine.md, "Add a dialect").
import type { PolicyDialect } from './types.js';
import { istioDialect } from './istio/index.js';
import { linkerdDialect } from './linkerd/index.js';
import { kubernetesDialect } from './kubernetes/index.js';
import { calicoDialect } from './calico/index.js';
import { ciliumDialect } from './cilium/index.js';

export const dialects: readonly PolicyDialect[] = [istioDialect, linkerdDialect, kubernetesDialect, calicoDialect, ciliumDialect];
