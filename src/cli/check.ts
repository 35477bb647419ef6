// PLACEHOLDER: the `check` command lands with its issue.
export async function main(_argv: string[]): Promise<number> {
  process.stderr.write('portcullis check: not available in this build\n');
  return 2;
}
