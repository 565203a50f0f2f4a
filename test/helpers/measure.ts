// A measured number the machine moves (memory with JIT code and feedback in the heap, GC timing, a
// loaded scheduler), taken again while it does not hold: up to `tries` runs, the last one kept. A real
// defect fails every run; a correct tree fails only when all of them land on the noise's far side.
// The number of runs goes into the assertion's text, so a pass that needed a second run is visible.

export interface Measured<T> {
  /** the last run's measurement (the first that held, or the last of `tries`) */
  value: T;
  /** how many runs it took */
  runs: number;
}

export function measureUntil<T>(run: () => T, holds: (m: T) => boolean, tries = 3): Measured<T> {
  let value = run();
  let runs = 1;
  while (runs < tries && !holds(value)) {
    value = run();
    runs++;
  }
  return { value, runs };
}

export async function measureUntilAsync<T>(run: () => Promise<T>, holds: (m: T) => boolean, tries = 3): Promise<Measured<T>> {
  let value = await run();
  let runs = 1;
  while (runs < tries && !holds(value)) {
    value = await run();
    runs++;
  }
  return { value, runs };
}

/** " (run 2 of up to 3)" when it took more than one run, else "". */
export const runsNote = (m: Measured<unknown>, tries = 3): string => (m.runs > 1 ? ` (run ${m.runs} of up to ${tries})` : '');
