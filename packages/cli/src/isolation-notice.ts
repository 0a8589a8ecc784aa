/**
 * What `cgn dev` (npm start) says in its banner when the miners it starts cannot isolate their
 * DServices: no working bubblewrap (no sandbox at all), or no writable cgroup (no CPU, memory or
 * process limits); plainly, with how to fix it. The miners decide the same way (`--sandbox auto`,
 * `--limits auto`), so this is what they will do.
 */
import { bwrapProblem, detectCgroups, type CgroupSupport } from '@cgn/miner';

export interface IsolationCheck {
  /** Why there is no sandbox (null: bubblewrap works, or none was asked for). */
  sandboxProblem: string | null;
  /** What the cgroups cannot enforce (null: all limits are enforced). */
  limitsProblem: string | null;
}

const TURNED_OFF = 'the sandbox was turned off (--sandbox none)';

export async function checkIsolation(sandbox: string, probe: () => Promise<string | null> = () => bwrapProblem(), cgroups: () => CgroupSupport = () => detectCgroups()): Promise<IsolationCheck> {
  const sandboxProblem = sandbox === 'none' ? TURNED_OFF : await probe();
  return { sandboxProblem, limitsProblem: cgroups().warning };
}

/** The banner's warning block, or '' when DServices are isolated and limited. */
export function isolationNotice(c: IsolationCheck): string {
  const lines: string[] = [];
  if (c.sandboxProblem !== null) {
    lines.push(
      '  WARNING: NO SANDBOX. DServices run as plain processes: they can read your files and use the network.',
      `           Why: ${c.sandboxProblem}`,
      ...(c.sandboxProblem === TURNED_OFF
        ? ['           Fix: start without --sandbox none (bubblewrap is used where it works)']
        : [
            '           Fix: install bubblewrap (Debian/Ubuntu: sudo apt-get install bubblewrap; Fedora: sudo dnf install bubblewrap)',
            '                and allow user namespaces (sysctl kernel.unprivileged_userns_clone=1, or in a container',
            '                run it with a seccomp profile that permits unshare), then restart: npm start',
          ]),
    );
  }
  if (c.limitsProblem !== null) {
    lines.push(
      '  WARNING: NO RESOURCE LIMITS. A DService can use all CPU and memory and start any number of processes.',
      `           Why: ${c.limitsProblem}`,
      '           Fix: run as root (or a user with a delegated cgroup) on a host with cgroup v2, or v1 with',
      '                memory, pids and cpu mounted under /sys/fs/cgroup, then restart: npm start',
    );
  }
  return lines.length === 0 ? '' : `\n${lines.join('\n')}\n`;
}
