import { describe, expect, it } from 'vitest';
import { createMachine, type Machine } from '../../src/machine.js';
import { ZONE } from '../../src/memory/constants.js';
import { buddyinfo, machineFromProc, pagetypeinfo, zoneinfo } from '../../src/proc/index.js';
import { PROFILE_NAMES, type ProfileName } from '../../src/profile.js';
import { expectMopsError, fixture } from './helpers.js';

const texts = (m: Machine) => ({
  buddyinfo: buddyinfo(m),
  pagetypeinfo: pagetypeinfo(m),
  zoneinfo: zoneinfo(m),
});

/** A 640 MiB machine with a populated ZONE_MOVABLE, as the round-trip test of from_proc builds. */
function withMovable(profile: ProfileName, minFreeKbytes?: number): Machine {
  return createMachine({
    memory: '640M',
    contents: false,
    profile,
    ...(minFreeKbytes !== undefined ? { minFreeKbytes } : {}),
    zones: [
      { idx: ZONE.DMA, startPfn: 1, spanned: 4095, present: 4095 },
      { idx: ZONE.DMA32, startPfn: 4096, spanned: 61440, present: 61440 },
      { idx: ZONE.NORMAL, startPfn: 65536, spanned: 65536, present: 65536 },
      { idx: ZONE.MOVABLE, startPfn: 131072, spanned: 32768, present: 32768 },
    ],
  });
}

/** Sets `field` (`min`, `boost`, `start_pfn`, …) of `zone` in a zoneinfo text; returns the text and its line. */
function editZone(zi: string, zone: string, field: string, value: string) {
  const lines = zi.split('\n');
  let inZone = false;
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].startsWith('Node ')) inZone = new RegExp(`zone +${zone}$`).test(lines[i]);
    else if (inZone) {
      const m = new RegExp(`^(\\s+${field}:?\\s+)\\S+$`).exec(lines[i]);
      if (m) {
        lines[i] = m[1] + value;
        return { text: lines.join('\n'), line: i + 1 };
      }
    }
  }
  throw new Error(`no ${field} in zone ${zone}`);
}

// No time is measured here: a search that walks min_free_kbytes page by page takes tens of
// seconds on these inputs, and the test's timeout fails it; the bisection takes milliseconds.

describe('machineFromProc: min_free_kbytes is recovered from zoneinfo in bounded time', () => {
  for (const profile of ['v6.3', 'v6.17'] as const)
    it(`${profile}: a ZONE_MOVABLE min no min_free_kbytes can give is refused at once, naming the line`, () => {
      const t = texts(withMovable(profile));
      for (const min of ['200000000', '500000000']) {
        const { text, line } = editZone(t.zoneinfo, 'Movable', 'min', min);
        expectMopsError(
          () => machineFromProc({ ...t, zoneinfo: text }, { profile }),
          'E_PROC_PARSE',
          new RegExp(
            `^zoneinfo line ${line}: zone Movable: min ${min} \\(boost 0\\) is more than any vm.min_free_kbytes \\(0..2147483647\\) gives it`,
          ),
        );
      }
    });

  for (const profile of PROFILE_NAMES)
    it(`${profile}: the largest min_free_kbytes (2147483647) round-trips with a Movable zone`, () => {
      const orig = withMovable(profile, 2147483647);
      const t = texts(orig);
      const copy: Machine | undefined = machineFromProc(t, { profile });
      expect(copy!.mem.node.zones.map((z) => z.watermark.join('/'))).toEqual(
        orig.mem.node.zones.map((z) => z.watermark.join('/')),
      );
      expect(copy!.minFreeKbytes).toBeLessThanOrEqual(2147483647);
      expect(zoneinfo(copy!)).toBe(t.zoneinfo);
    });

  const sample = {
    buddyinfo: fixture('buddyinfo'),
    pagetypeinfo: fixture('pagetypeinfo'),
    zoneinfo: fixture('zoneinfo'),
  };

  it('a boost above the min that includes it is refused, naming the boost line', () => {
    const { text, line } = editZone(sample.zoneinfo, 'Normal', 'boost', '100000');
    expect(line).toBe(147);
    expectMopsError(
      () => machineFromProc({ ...sample, zoneinfo: text }),
      'E_PROC_PARSE',
      /^zoneinfo line 147: zone Normal: boost 100000 is more than min 7937, which includes it/,
    );
  });

  it('a min beyond any min_free_kbytes is refused naming the zone, not an option never given', () => {
    const { text } = editZone(sample.zoneinfo, 'Normal', 'min', '999999999999');
    const e = expectMopsError(
      () => machineFromProc({ ...sample, zoneinfo: text }),
      'E_PROC_PARSE',
      /^zoneinfo line 148: zone Normal: min 999999999999 \(boost 0\) is more than any vm.min_free_kbytes/,
    );
    expect(e.message).not.toMatch(/minFreeKbytes/);
  });

  it('mins that no single min_free_kbytes gives, but each within reach, still build (the sum)', () => {
    // A real kernel's zone sizes may have changed since it last set its watermarks.
    const { text } = editZone(sample.zoneinfo, 'Normal', 'min', '9000');
    const m = machineFromProc({ ...sample, zoneinfo: text });
    expect(m.minFreeKbytes).toBe((44 + 8914 + 9000) * 4);
  });
});

describe('machineFromProc: zone spans are exact at any size, and blame the file at fault', () => {
  const b = fixture('buddyinfo');
  const p = fixture('pagetypeinfo');
  const zi = fixture('zoneinfo');

  it('without zoneinfo, 2^22 pageblocks in a zone are too many, said of pagetypeinfo', () => {
    const many = p.replace(
      'Node 0, zone   Normal           62         1186',
      'Node 0, zone   Normal           62      4194304',
    );
    const e = expectMopsError(
      () => machineFromProc({ buddyinfo: b, pagetypeinfo: many }),
      'E_PROC_PARSE',
      /^pagetypeinfo line 24: zone Normal has 4194462 pageblocks \(8192\.3 GiB\).*; mops emulates at most 64 GiB/,
    );
    expect(e.message).not.toMatch(/zoneinfo|-\d/);
  });

  it('a start_pfn of 2^32 or a huge span is measured exactly and named by its line', () => {
    const far = editZone(zi, 'Normal', 'start_pfn', '4294967296');
    expect(far.line).toBe(190);
    expectMopsError(
      () => machineFromProc({ buddyinfo: b, pagetypeinfo: p, zoneinfo: far.text }),
      'E_PROC_PARSE',
      /^zoneinfo line 190: zone Normal spans pfns 4294967296 to 4300472319, beyond 64 GiB; mops emulates at most 64 GiB/,
    );
    const wide = editZone(zi, 'Normal', 'spanned', String(2 ** 31));
    expectMopsError(
      () => machineFromProc({ buddyinfo: b, pagetypeinfo: p, zoneinfo: wide.text }),
      'E_PROC_PARSE',
      /^zoneinfo line 152: zone Normal spans pfns 1048576 to 2148532223, beyond 64 GiB/,
    );
  });

  it('a zone starting inside the one before it names both and the start_pfn line', () => {
    const inside = editZone(zi, 'DMA32', 'start_pfn', '100');
    expectMopsError(
      () => machineFromProc({ buddyinfo: b, pagetypeinfo: p, zoneinfo: inside.text }),
      'E_PROC_PARSE',
      /^zoneinfo line 144: zone DMA32 starts at pfn 100, inside zone DMA \(pfns 1 to 4095\)/,
    );
  });

  it('spans too small for the pageblocks are said of zoneinfo, with the line', () => {
    const small = editZone(zi, 'DMA32', 'spanned', '512');
    expectMopsError(
      () => machineFromProc({ buddyinfo: b, pagetypeinfo: p, zoneinfo: small.text }),
      'E_PROC_PARSE',
      /^zoneinfo line 106: zone DMA32 spans 512 pages from pfn 4096, fewer than the 1528 pageblocks pagetypeinfo counts/,
    );
  });
});
