import { describe, expect, it } from 'vitest';
import { CommitWatermark, nextOffset } from '../../src/watermark.ts';

describe('CommitWatermark', () => {
  it('has nothing committed before any record finishes', () => {
    const w = new CommitWatermark(['10', '11']);
    expect(w.committed).toBeUndefined();
    expect(w.advance()).toBeUndefined();
    expect(w.allDone).toBe(false);
  });

  it('does not move past an unfinished record when later ones finish first', () => {
    const w = new CommitWatermark(['10', '11', '12']);
    w.complete(2);
    w.complete(1);
    expect(w.advance()).toBeUndefined();
    expect(w.committed).toBeUndefined();
    w.complete(0);
    expect(w.advance()).toBe('12');
    expect(w.committed).toBe('12');
    expect(w.allDone).toBe(true);
  });

  it('moves over the contiguous finished run only', () => {
    const w = new CommitWatermark(['1', '2', '3', '4']);
    w.complete(0);
    w.complete(1);
    w.complete(3);
    expect(w.advance()).toBe('2');
    expect(w.committed).toBe('2');
    expect(w.allDone).toBe(false);
  });

  it('returns undefined from advance when it did not move since the last call', () => {
    const w = new CommitWatermark(['1', '2']);
    w.complete(0);
    expect(w.advance()).toBe('1');
    expect(w.advance()).toBeUndefined();
    expect(w.committed).toBe('1');
  });

  it('works on positions, so gaps in the offsets are fine', () => {
    const w = new CommitWatermark(['100', '105', '230']);
    w.complete(0);
    w.complete(1);
    expect(w.advance()).toBe('105');
  });

  it('treats completing the same index twice as once', () => {
    const w = new CommitWatermark(['1', '2']);
    w.complete(0);
    w.complete(0);
    expect(w.advance()).toBe('1');
    expect(w.allDone).toBe(false);
  });

  it('is all done for an empty batch', () => {
    const w = new CommitWatermark([]);
    expect(w.allDone).toBe(true);
    expect(w.advance()).toBeUndefined();
    expect(w.committed).toBeUndefined();
  });

  it.each([-1, 3, 100])('rejects completing index %i outside the batch with a RangeError', (index) => {
    const w = new CommitWatermark(['1', '2', '3']);
    expect(() => w.complete(index)).toThrow(RangeError);
  });
});

describe('CommitWatermark across appended batches', () => {
  it('numbers positions over the whole run and moves across a batch boundary', () => {
    const w = new CommitWatermark(['10', '11']);
    expect(w.append(['12', '13'])).toBe(2);
    w.complete(3);
    w.complete(0);
    expect(w.advance()).toBe('10');
    expect(w.firstUnfinished).toBe('11');
    w.complete(1);
    w.complete(2);
    expect(w.advance()).toBe('13');
    expect(w.allDone).toBe(true);
    expect(w.firstUnfinished).toBeUndefined();
  });

  it('is not all done once a new batch arrives after everything finished', () => {
    const w = new CommitWatermark(['1']);
    w.complete(0);
    w.advance();
    expect(w.allDone).toBe(true);
    w.append(['2']);
    expect(w.allDone).toBe(false);
    expect(w.committed).toBe('1');
  });

  it('drops the finished front, so a long run holds only what is unfinished, and still names positions absolutely', () => {
    const w = new CommitWatermark();
    const offsets = Array.from({ length: 5000 }, (_, i) => String(i));
    w.append(offsets);
    for (let i = 0; i < 4000; i++) w.complete(i);
    expect(w.advance()).toBe('3999');
    // The front was dropped: a position below it is refused, the ones past it still work.
    expect(() => w.complete(10)).toThrow(RangeError);
    w.complete(4000);
    expect(w.advance()).toBe('4000');
    expect(w.firstUnfinished).toBe('4001');
    expect(w.append(['5000'])).toBe(5000);
  });
});

describe('nextOffset', () => {
  it.each([
    ['0', '1'],
    ['41', '42'],
    ['9007199254740991', '9007199254740992'],
    ['9007199254740993', '9007199254740994'],
    ['9223372036854775806', '9223372036854775807'],
  ])('after %s is %s, exactly, without float rounding', (offset, next) => {
    expect(nextOffset(offset)).toBe(next);
  });
});
