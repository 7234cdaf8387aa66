// Clock: the system clock is monotonic; the manual clock moves only when told.
import { describe, expect, it } from 'vitest';
import { ManualClock, systemClock } from '../../src/io/clock.js';

describe('systemClock', () => {
  it('is monotonic and close to Date.now for wall time', () => {
    const a = systemClock.now();
    const b = systemClock.now();
    expect(b).toBeGreaterThanOrEqual(a);
    expect(Math.abs(systemClock.wallMs() - Date.now())).toBeLessThan(1000);
  });
});

describe('ManualClock', () => {
  it('advances monotonic and wall time together', () => {
    const clock = new ManualClock(10, 1000);
    clock.advance(5.5);
    expect(clock.now()).toBe(15.5);
    expect(clock.wallMs()).toBe(1005.5);
    clock.setNow(20);
    expect(clock.now()).toBe(20);
    expect(clock.wallMs()).toBe(1010);
  });

  it('lets wall time jump without moving monotonic time', () => {
    const clock = new ManualClock();
    clock.setWall(5);
    expect(clock.wallMs()).toBe(5);
    expect(clock.now()).toBe(0);
  });

  it('rejects going backwards and non-numbers', () => {
    const clock = new ManualClock(100);
    expect(() => clock.advance(-1)).toThrow(RangeError);
    expect(() => clock.setNow(99)).toThrow(/expected nowMs >= 100, got 99/);
    expect(() => clock.advance(Number.NaN)).toThrow(TypeError);
    expect(() => new ManualClock(Infinity)).toThrow(TypeError);
  });
});
