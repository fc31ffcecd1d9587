/** Where and how eagerly a child runs: `taskset -c <cpus>` and `nice -n <niceness>` wrappers (both exec the target). */
export interface Placement {
  /** CPU list for taskset, e.g. "0"; undefined = no pinning. */
  readonly cpus: string | undefined;
  /** nice value; 0 = unchanged, negative (root only) = ahead of other work on a shared machine. */
  readonly niceness: number;
}

/** Wraps a command line in nice/taskset; since both exec, the child's pid is the target's own. */
export function placeCommand(command: string, args: readonly string[], placement: Placement): [string, string[]] {
  let line = [command, ...args];
  if (placement.cpus !== undefined) line = ["taskset", "-c", placement.cpus, ...line];
  if (placement.niceness !== 0) line = ["nice", "-n", String(placement.niceness), ...line];
  const [head, ...rest] = line;
  return [head ?? command, rest];
}
