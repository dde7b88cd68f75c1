// Asks for a bearer token when the query API answers 401 (the daemon runs with
// `--auth.tokens-file` or `SPOOR_AUTH_TOKENS`); the token is kept in sessionStorage for this tab.
import { useEffect, useState } from 'react';
import { onAuthRequired, setToken } from '../api';

export function TokenPrompt({ onSaved }: { onSaved: () => void }) {
  const [message, setMessage] = useState<string | null>(null);
  const [value, setValue] = useState('');
  useEffect(() => onAuthRequired((m) => setMessage(m)), []);
  if (message === null) return null;
  return (
    <form
      className="token-prompt"
      role="dialog"
      aria-label="Bearer token"
      onSubmit={(e) => {
        e.preventDefault();
        if (!value.trim()) return;
        setToken(value.trim());
        setValue('');
        setMessage(null);
        onSaved();
      }}
    >
      <p className="error">{message}</p>
      <label>
        Token <input type="password" autoComplete="off" value={value} onChange={(e) => setValue(e.target.value)} />
      </label>
      <button type="submit">Sign in</button>
    </form>
  );
}
