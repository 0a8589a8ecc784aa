#!/usr/bin/env node
/**
 * `npm run fuzz -- [--cases N] [--seed S] [--case I] [--concurrency C] [--json FILE]`
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { runFuzz, type FuzzReport } from './run.js';

const USAGE = `Usage: npm run fuzz -- [options]

Fuzzes a real CGN node, miner and MediaGen on this machine with seeded hostile input: tunnel
frames in every handshake phase and against real work units, malformed HTTP requests, broken
images, and a hostile node against real miners.

Options:
  --cases N         how many cases (default 10000; before a release: 100000)
  --seed S          the run's seed (default: random; printed)
  --case I          replay only case I of the seed (what a failure prints)
  --concurrency C   cases in flight against the node at once (default 48)
  --json FILE       also write the report as JSON to FILE
  -h, --help        show this help

Exits 1 when a case failed, printing each failure with the command that replays it.
`;

function summary(r: FuzzReport): string {
  const fivexx = Object.entries(r.status5xx).map(([s, n]) => `${s}: ${n}`).join(', ') || 'none';
  return [
    `seed ${r.seed}: ${r.cases} cases in ${r.durationS} s (http ${r.byKind.http}, image ${r.byKind.image}, tunnel ${r.byKind.tunnel}, hostile node ${r.byKind.miner})`,
    `crashes ${r.crashes}, hangs ${r.hangs}, 500s ${r.status500}, other 5xx ${fivexx}`,
    `answers ${JSON.stringify(r.statusClasses)}, closed without an answer ${r.noAnswer}, tunnels closed by the node ${r.tunnelCloses}`,
    `charged: ${r.charged.ledgerRecords} ledger records for ${r.charged.answersWithCost} answers with a cost (+ ${r.charged.goneAfterCharge} whose client left during the commit)${r.charged.surplus !== 0 ? `; ${r.charged.surplus} records no client saw: ${r.charged.unseen ?? ''}` : ''}`,
    `node memory: RSS ${r.memory.rssStartMb} MB at start, ${r.memory.rssMaxMb} MB highest, ${r.memory.rssEndMb} MB at the end; heap used ${r.memory.heapStartMb} / ${r.memory.heapMaxMb} / ${r.memory.heapEndMb} MB; node log ${Math.round(r.nodeLog.bytes / 1024)} KB, longest line ${r.nodeLog.longestLine} B`,
    `mean ms per case: ${JSON.stringify(r.meanMsByKind)}`,
    `failures: ${r.failures.length}`,
  ].join('\n');
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: { cases: { type: 'string' }, seed: { type: 'string' }, case: { type: 'string' }, concurrency: { type: 'string' }, json: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`fuzz: ${(err as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const int = (v: string | undefined, name: string, dflt: number): number => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 0) {
      process.stderr.write(`fuzz: --${name} must be a non-negative integer, got "${v}"\n`);
      process.exit(2);
    }
    return n;
  };
  const seed = int(values.seed, 'seed', Math.floor(Math.random() * 2 ** 31));
  const only = values.case === undefined ? undefined : int(values.case, 'case', 0);
  const cases = int(values.cases, 'cases', 10_000);
  process.stderr.write(`fuzz: seed ${seed}, ${only !== undefined ? `case ${only} only` : `${cases} cases`}; starting a node, a miner and two hostile-node lanes\n`);
  const report = await runFuzz({
    seed, cases, ...(only !== undefined ? { only } : {}), concurrency: int(values.concurrency, 'concurrency', 48),
    progress: (p) => process.stderr.write(`fuzz: ${p.done}/${p.total} cases, ${p.failures} failures, ${p.elapsedS.toFixed(0)} s\n`),
  });
  if (values.json !== undefined) writeFileSync(values.json, JSON.stringify(report, null, 2) + '\n');
  process.stdout.write(summary(report) + '\n');
  for (const f of report.failures) {
    process.stdout.write(`\nFAILED case ${f.case} (${f.kind}): ${f.what}\n  ${f.problem.split('\n').join('\n  ')}\n  replay: ${f.replay}\n`);
  }
  process.exit(report.failures.length > 0 ? 1 : 0);
}

void main();
