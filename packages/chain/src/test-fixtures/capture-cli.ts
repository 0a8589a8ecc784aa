/** Runs a CLI entry point (`runWalletFromArgs`, `runSettleFromArgs`) with its output captured, for tests. */
export type CliRunner = (args: string[], io: { stdout: (t: string) => void; stderr: (t: string) => void; env: Record<string, string | undefined> }) => Promise<number>;

export async function captureCli(runner: CliRunner, args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runner(args, { stdout: (t) => void out.push(t), stderr: (t) => void err.push(t), env });
  return { code, out: out.join('\n'), err: err.join('\n') };
}
