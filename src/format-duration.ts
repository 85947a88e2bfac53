/**
 * `42 s`, `3 min 5 s`, `10 min`, `1 h 2 min`: how long something took or may take, for people
 * (pages, check runs, the command line, limits in error messages). With `tenths`, under a
 * minute shows tenths of a second (`0.4 s`): the command line's found image takes well under one.
 */
export function formatDuration(ms: number, { tenths = false } = {}): string {
  const exact = Math.max(0, ms) / 1000;
  // 59.96 s is "60.0 s" in tenths: that one is a minute.
  if (tenths && exact < 59.95) return `${exact.toFixed(1)} s`;
  const seconds = Math.round(exact);
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return seconds % 60 ? `${minutes} min ${seconds % 60} s` : `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  return minutes % 60 ? `${hours} h ${minutes % 60} min` : `${hours} h`;
}
