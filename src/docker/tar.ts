// A tar archive in memory: for the Docker API's putArchive (copying a helper binary into a
// container) and for copying a k6 bundle to a load host over SSH (`tar -x` there). Only what
// that needs: ustar headers, regular files, two zero blocks.

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

export interface TarFile {
  name: string;
  content: Buffer;
  mode?: number;
}

function header(name: string, size: number, mode: number, mtimeS: number): Buffer {
  if (Buffer.byteLength(name) > 99) throw new Error(`tar: name too long: ${name}`);
  const h = Buffer.alloc(512, 0);
  h.write(name, 0, 'utf8');
  h.write(octal(mode, 8), 100, 'ascii');
  h.write(octal(0, 8), 108, 'ascii'); // uid
  h.write(octal(0, 8), 116, 'ascii'); // gid
  h.write(octal(size, 12), 124, 'ascii');
  h.write(octal(Math.floor(mtimeS), 12), 136, 'ascii');
  h.write('        ', 148, 'ascii'); // checksum placeholder: eight spaces
  h.write('0', 156, 'ascii'); // regular file
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return h;
}

/** Regular files (names without directories) in one archive. */
export function filesTar(files: readonly TarFile[], mtimeS = 0): Buffer {
  const parts: Buffer[] = [];
  for (const f of files) {
    parts.push(header(f.name, f.content.length, f.mode ?? 0o644, mtimeS), f.content, Buffer.alloc((512 - (f.content.length % 512)) % 512, 0));
  }
  parts.push(Buffer.alloc(1024, 0));
  return Buffer.concat(parts);
}

export function singleFileTar(name: string, content: Buffer, mode = 0o755, mtimeS = 0): Buffer {
  return filesTar([{ name, content, mode }], mtimeS);
}
