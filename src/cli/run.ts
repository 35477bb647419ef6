// PLACEHOLDER: the `run` command lands with its issue.
export async function main(_argv: string[]): Promise<number> {
  process.stderr.write('portcullis run: not available in this build\n');
  return 2;
}
