// Owns the cache of verified JWT signatures: a token whose exact bytes were verified against the same
// key set need not be verified again (Envoy jwt_authn's token cache). Time and audience claims are not cached.

/** Bounded, least-recently-used. Entries hold the key-set object they were verified with. */
export class VerifiedSignatureCache<K extends object, P> {
  readonly #entries = new Map<string, { keys: K; provider: P }>();
  constructor(private readonly maxEntries: number) {}

  /** True only when this exact token verified against this very key set for this provider. */
  has(token: string, provider: P, keys: K): boolean {
    const hit = this.#entries.get(token);
    if (hit === undefined) return false;
    if (hit.keys !== keys || hit.provider !== provider) {
      // The key set was refreshed or rotated since: verify again rather than trust the old keys.
      this.#entries.delete(token);
      return false;
    }
    this.#entries.delete(token);
    this.#entries.set(token, hit);
    return true;
  }

  add(token: string, provider: P, keys: K): void {
    if (this.maxEntries <= 0) return;
    this.#entries.delete(token);
    this.#entries.set(token, { keys, provider });
    if (this.#entries.size > this.maxEntries) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
  }

  get size(): number {
    return this.#entries.size;
  }
}
