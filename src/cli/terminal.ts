// What the command line says to the person at the terminal. This is its interface, not
// logging: a build's progress, the session's URL, a one-sentence failure. The service's own
// lines (bindery serve, bindery worker) go through the logger (src/log/create-log.ts).

/** A line for the person (standard error): progress, outcomes, failures. */
export function say(text: string): void {
  process.stderr.write(`${text}\n`);
}

/** A line for a script (standard output): the result it may read, such as an image name. */
export function print(text: string): void {
  process.stdout.write(`${text}\n`);
}
