// Owns CertsIo: where the `portcullis certs` subcommands write their output and errors (stdout/stderr in
// the CLI, buffers in tests), in a module of its own so the subcommands need not import each other.

export interface CertsIo {
  out(text: string): void;
  err(text: string): void;
}
