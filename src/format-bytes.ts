/**
 * `300 KiB`, `12.5 MiB`, `100 MiB`, `1.5 GiB`: a size for people, in binary units as
 * BINDERY_*_SIZE settings are read (parseByteSize); one decimal unless the number is whole.
 */
export function formatBytes(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const shown = unit === 0 || Number.isInteger(value) ? String(value) : value.toFixed(1);
  return `${shown} ${units[unit]}`;
}
