// A one-file tar archive in memory, for the Docker API's putArchive (copying a helper binary
// into a container). Only what that needs: ustar header, one regular file, two zero blocks.

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

export function singleFileTar(name: string, content: Buffer, mode = 0o755, mtimeS = 0): Buffer {
  if (Buffer.byteLength(name) > 99) throw new Error(`tar: name too long: ${name}`);
  const header = Buffer.alloc(512, 0);
  header.write(name, 0, 'utf8');
  header.write(octal(mode, 8), 100, 'ascii');
  header.write(octal(0, 8), 108, 'ascii'); // uid
  header.write(octal(0, 8), 116, 'ascii'); // gid
  header.write(octal(content.length, 12), 124, 'ascii');
  header.write(octal(Math.floor(mtimeS), 12), 136, 'ascii');
  header.write('        ', 148, 'ascii'); // checksum placeholder: eight spaces
  header.write('0', 156, 'ascii'); // regular file
  header.write('ustar\0', 257, 'ascii');
  header.write('00', 263, 'ascii');
  let sum = 0;
  for (const b of header) sum += b;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  const pad = Buffer.alloc((512 - (content.length % 512)) % 512, 0);
  return Buffer.concat([header, content, pad, Buffer.alloc(1024, 0)]);
}
