// The UI with authentication on: the token typed into the prompt (shown on a 401) is sent as
// `Authorization: Bearer` on every API request, and kept for the tab in sessionStorage.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { act, fireEvent, render, screen } from '@testing-library/react';
import { AuthError, services, setToken, token } from '../api';
import { TokenPrompt } from '../components/TokenPrompt';

afterEach(() => {
  vi.unstubAllGlobals();
  setToken(null);
});

// A stand-in for the daemon's query port: 401 without the right token, like `spoor --auth.tokens`.
function daemon(valid: string) {
  const seen: (string | null)[] = [];
  const fetch = vi.fn(async (_url: string, init?: RequestInit) => {
    const auth = (init?.headers as Record<string, string> | undefined)?.Authorization ?? null;
    seen.push(auth);
    if (auth !== `Bearer ${valid}`) return new Response('unknown bearer token\n', { status: 401 });
    return new Response(JSON.stringify({ data: ['b', 'a'] }), { status: 200 });
  });
  vi.stubGlobal('fetch', fetch);
  return seen;
}

describe('bearer tokens', () => {
  it('prompts on 401, then sends the typed token', async () => {
    const seen = daemon('s3cret');
    let saved = 0;
    render(<TokenPrompt onSaved={() => (saved += 1)} />);
    expect(screen.queryByRole('dialog')).toBeNull();

    await act(async () => {
      await expect(services()).rejects.toBeInstanceOf(AuthError);
    });
    expect(screen.getByRole('dialog').textContent).toContain('unknown bearer token');
    fireEvent.change(screen.getByLabelText('Token'), { target: { value: ' s3cret ' } });
    fireEvent.click(screen.getByRole('button', { name: 'Sign in' }));
    expect(saved).toBe(1);
    expect(token()).toBe('s3cret');
    expect(sessionStorage.getItem('spoor.token')).toBe('s3cret');
    expect(screen.queryByRole('dialog')).toBeNull();

    expect(await services()).toEqual(['a', 'b']);
    expect(seen).toEqual([null, 'Bearer s3cret']);
  });

  it('a wrong token prompts again', async () => {
    daemon('right');
    setToken('wrong');
    render(<TokenPrompt onSaved={() => {}} />);
    await act(async () => {
      await expect(services()).rejects.toThrow('unknown bearer token');
    });
    expect(screen.getByRole('dialog')).toBeTruthy();
  });
});
