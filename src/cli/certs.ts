// PLACEHOLDER: the `certs` command lands with its issue.
export async function main(_argv: string[]): Promise<number> {
  process.stderr.write('portcullis certs: not available in this build\n');
  return 2;
}
