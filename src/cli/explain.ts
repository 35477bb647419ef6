// PLACEHOLDER: the `explain` command lands with its issue.
export async function main(_argv: string[]): Promise<number> {
  process.stderr.write('portcullis explain: not available in this build\n');
  return 2;
}
