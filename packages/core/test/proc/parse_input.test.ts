import { describe, expect, it } from 'vitest';
import { type MopsError } from '../../src/errors.js';
import { ul } from '../../src/proc/format.js';
import {
  machineFromProc,
  pagetypeinfo,
  parseBuddyinfo,
  parsePagetypeinfo,
  parseVmstat,
  parseZoneinfo,
} from '../../src/proc/index.js';
import { expectMopsError, fixture } from './helpers.js';

const b = fixture('buddyinfo');
const p = fixture('pagetypeinfo');
const zi = fixture('zoneinfo');
const vm = fixture('vmstat');

/** `text` with line `n` (1-based) replaced by `line`. */
function setLine(text: string, n: number, line: string): string {
  const lines = text.split('\n');
  lines[n - 1] = line;
  return lines.join('\n');
}

/**
 * Runs `fn`, which must throw E_PROC_PARSE matching `re`. No time is measured: the lines
 * below are long enough that a parser quadratic in the line length runs for minutes, and
 * the test's timeout fails it; a linear one takes milliseconds.
 */
function parseError(fn: () => unknown, re: RegExp): MopsError {
  return expectMopsError(fn, 'E_PROC_PARSE', re);
}

describe('parsing takes time linear in the line, and messages quote at most ~80 characters', () => {
  const pad = ' \t'.repeat(200000);
  const spaces = ' '.repeat(400000);
  // `x\ry` ends a whitespace run with a character `.` does not match: a `\s+(.*)$` pattern
  // retries every split of the run.
  const cases: [string, () => unknown, RegExp][] = [
    [
      'a pagetypeinfo block-count line',
      () => parsePagetypeinfo(setLine(p, 24, `Node 0, zone   Normal${pad}x`)),
      /^pagetypeinfo line 24: unexpected line 'Node 0, zone {3}Normal[ \t]+…'$/,
    ],
    [
      'a pagetypeinfo free-count line',
      () =>
        parsePagetypeinfo(
          setLine(p, 15, `Node    0, zone   Normal, type    Unmovable${spaces}x\ry`),
        ),
      /^pagetypeinfo line 15: expected 11 free counts, found 'x\\ry'/,
    ],
    [
      'the pagetypeinfo order header',
      () =>
        parsePagetypeinfo(setLine(p, 4, `Free pages count per migrate type at order${spaces}x\ry`)),
      /^pagetypeinfo line 4: orders 'x\\ry'; mops models orders 0..10/,
    ],
    [
      'the pagetypeinfo block-count header',
      () => parsePagetypeinfo(setLine(p, 21, `Number of blocks type${spaces}x\ry`)),
      /^pagetypeinfo line 21: unknown migrate type 'x'/,
    ],
    [
      'a buddyinfo line',
      () => parseBuddyinfo(setLine(b, 3, `Node 0, zone   Normal${spaces}x\ry`)),
      /^buddyinfo line 3: expected 11 free counts for orders 0..10, found 'x\\ry'/,
    ],
    [
      'a zoneinfo line',
      () => parseZoneinfo(setLine(zi, 55, `        boost${spaces}x`)),
      /^zoneinfo line 55: expected .*, found 'boost[ ]+…'$/,
    ],
    [
      'a vmstat line',
      () => parseVmstat(setLine(vm, 2, `nr_zone_inactive_anon${spaces}x`)),
      /^vmstat line 2: expected '<name> <value>', found 'nr_zone_inactive_anon[ ]+…'$/,
    ],
    [
      'an unknown zone name',
      () => parseBuddyinfo(setLine(b, 1, `Node 0, zone ${'Z'.repeat(400000)} 0`)),
      /^buddyinfo line 1: unknown zone 'Z{79}…'/,
    ],
  ];
  for (const [what, fn, re] of cases)
    it(what, () => {
      const e = parseError(fn, re);
      expect(e.message.length).toBeLessThan(300);
    });
});

describe('counts are unsigned and held exactly, or refused naming the line', () => {
  it('vmstat: beyond 2^53 - 1, or negative', () => {
    for (const v of ['1000000000000000000000', '18446744073709551615', '9007199254740992'])
      expectMopsError(
        () => parseVmstat(setLine(vm, 131, `pgmigrate_success ${v}`)),
        'E_PROC_PARSE',
        new RegExp(
          `^vmstat line 131: pgmigrate_success ${v} is beyond what mops can represent exactly \\(at most 9007199254740991\\)`,
        ),
      );
    expectMopsError(
      () => parseVmstat(setLine(vm, 132, 'pgmigrate_fail -5')),
      'E_PROC_PARSE',
      /^vmstat line 132: pgmigrate_fail -5 is negative; the kernel prints every \/proc\/vmstat counter unsigned/,
    );
    expect(
      parseVmstat(setLine(vm, 131, 'pgmigrate_success 9007199254740991')).get('pgmigrate_success'),
    ).toBe(9007199254740991);
  });

  it('zoneinfo: the unsigned lines; the signed ones (protection, pagesets) may be negative', () => {
    expectMopsError(
      () => parseZoneinfo(setLine(zi, 73, '      nr_mlock     1000000000000000000000')),
      'E_PROC_PARSE',
      /^zoneinfo line 73: nr_mlock 1000000000000000000000 is beyond what mops can represent exactly/,
    );
    expectMopsError(
      () => parseZoneinfo(setLine(zi, 3, '      nr_inactive_anon -405')),
      'E_PROC_PARSE',
      /^zoneinfo line 3: nr_inactive_anon -405 is negative; zoneinfo prints it unsigned/,
    );
    expectMopsError(
      () => parseZoneinfo(setLine(zi, 98, '  start_pfn:           -5')),
      'E_PROC_PARSE',
      /^zoneinfo line 98: start_pfn -5 is negative; zoneinfo prints it unsigned/,
    );
    expectMopsError(
      () => parseZoneinfo(setLine(zi, 98, '  start_pfn:           18446744073709551615')),
      'E_PROC_PARSE',
      /^zoneinfo line 98: start_pfn 18446744073709551615 is beyond what mops can represent exactly/,
    );
    const signed = setLine(
      setLine(zi, 64, '        protection: (0, -1, 5706, 5706, 5706)'),
      84,
      '              count:    -3',
    );
    expect(parseZoneinfo(signed).zones.get(0)?.startPfn).toBe(1);
  });

  it('zoneinfo: a value mops reads, given twice in a zone (the second would silently win)', () => {
    expectMopsError(
      () =>
        parseZoneinfo(setLine(zi, 98, '  start_pfn:           1\n  start_pfn:           2000000')),
      'E_PROC_PARSE',
      /^zoneinfo line 99: zone DMA: a second start_pfn \(the first is on line 98\)/,
    );
    expectMopsError(
      () => parseZoneinfo(setLine(zi, 62, '        managed  3840\n        managed  3000')),
      'E_PROC_PARSE',
      /^zoneinfo line 63: zone DMA: a second managed \(the first is on line 62\)/,
    );
  });

  it('buddyinfo and pagetypeinfo counts beyond 2^53 - 1', () => {
    expectMopsError(
      () => parseBuddyinfo(b.replace('  2758 ', ' 99999999999999999999999 ')),
      'E_PROC_PARSE',
      /^buddyinfo line 3: free count 99999999999999999999999 is beyond what mops can represent exactly/,
    );
    expectMopsError(
      () =>
        parsePagetypeinfo(
          p.replace('type    Unmovable    661 ', 'type    Unmovable    99999999999999999999999 '),
        ),
      'E_PROC_PARSE',
      /^pagetypeinfo line 15: free count 99999999999999999999999 is beyond what mops can represent exactly/,
    );
    expectMopsError(
      () =>
        parsePagetypeinfo(
          p.replace(
            'zone   Normal           62 ',
            'zone   Normal           99999999999999999999999 ',
          ),
        ),
      'E_PROC_PARSE',
      /^pagetypeinfo line 24: block count 99999999999999999999999 is beyond what mops can represent exactly/,
    );
  });

  it('%lu of a counter past 2^53 prints its digits, never an exponent', () => {
    expect(ul(1e21)).toBe('1000000000000000000000');
    expect(ul(2 ** 64)).toBe('18446744073709551616');
    expect(ul(12.7)).toBe('12');
    expect(ul(-3)).toBe('0');
  });
});

describe('pagetypeinfo: what a kernel cannot print', () => {
  it('a migrate type twice in the block-count header', () => {
    const dup = p
      .replace(
        'Number of blocks type     Unmovable      Movable',
        'Number of blocks type     Unmovable      Movable      Movable',
      )
      .replace(/^(Node 0, zone +\S+ +\d+ +)(\d+)/gm, '$1$2 $2');
    expectMopsError(
      () => parsePagetypeinfo(dup),
      'E_PROC_PARSE',
      /^pagetypeinfo line 21: migrate type 'Movable' appears twice in the 'Number of blocks type' header/,
    );
    expectMopsError(
      () => machineFromProc({ buddyinfo: b, pagetypeinfo: dup }),
      'E_PROC_PARSE',
      /appears twice/,
    );
  });

  it('a free-count row of a zone and type given twice', () => {
    const dup = setLine(
      p,
      6,
      'Node    0, zone      DMA, type    Unmovable      0      0      0      0      0      0      0      0      1      0      0 ',
    );
    expectMopsError(
      () => parsePagetypeinfo(dup),
      'E_PROC_PARSE',
      /^pagetypeinfo line 6: zone DMA type Unmovable appears twice/,
    );
  });

  it(">N other than >100000: the kernel stops counting at 100000 and prints '>100000'", () => {
    const gt = p.replace('type  Reclaimable   1817 ', 'type  Reclaimable     >5 ');
    expect(gt).not.toBe(p);
    const e = expectMopsError(
      () => machineFromProc({ buddyinfo: b, pagetypeinfo: gt }),
      'E_PROC_PARSE',
      /^pagetypeinfo line 17: free count '>5': the kernel prints '>' only as '>100000'/,
    );
    expect(e.message).not.toMatch(/shows >100000/);
  });

  it('free blocks in ZONE_DEVICE (never in the buddy allocator)', () => {
    const devBuddy = `${b}Node 0, zone   Device      0      0      0      0      0      0      0      0      0      0      1 \n`;
    expectMopsError(
      () => parseBuddyinfo(devBuddy),
      'E_PROC_PARSE',
      /^buddyinfo line 4: zone Device has free blocks; ZONE_DEVICE pages are never in the buddy allocator/,
    );
    const devRow = p.replace(
      /(Node {4}0, zone {3}Normal, type {6}Isolate.*\n)/,
      '$1Node    0, zone   Device, type      Movable      0      0      0      0      0      0      0      0      0      0      1 \n',
    );
    expect(devRow).not.toBe(p);
    expectMopsError(
      () => parsePagetypeinfo(devRow),
      'E_PROC_PARSE',
      /^pagetypeinfo line 20: zone Device has free blocks; ZONE_DEVICE pages are never in the buddy allocator/,
    );
    // The reviewer's case: a Device zone alone, with one free order-10 block.
    expectMopsError(
      () =>
        machineFromProc({
          buddyinfo: 'Node 0, zone   Device 0 0 0 0 0 0 0 0 0 0 1\n',
          pagetypeinfo: p,
        }),
      'E_PROC_PARSE',
      /^buddyinfo line 1: zone Device has free blocks/,
    );
  });

  it('the sample still reads back as it was', () => {
    expect(pagetypeinfo(machineFromProc({ buddyinfo: b, pagetypeinfo: p }))).toBe(p);
  });
});
