// Who is signed in beyond the credential itself: the admin flag (probed at
// sign-in), and the message the sign-in page shows after a sign-out or a 401.
import { ApiError, forget } from './api';

const ADMIN = 'granulator.admin';
let notice = '';

export function isAdmin(): boolean {
  return sessionStorage.getItem(ADMIN) === 'yes';
}

export function setAdmin(admin: boolean): void {
  sessionStorage.setItem(ADMIN, admin ? 'yes' : 'no');
}

export function takeNotice(): string {
  const n = notice;
  notice = '';
  return n;
}

export function signOut(message: string): void {
  forget();
  sessionStorage.removeItem(ADMIN);
  notice = message;
  if (location.hash !== '#/signin') location.hash = '#/signin';
  else window.dispatchEvent(new HashChangeEvent('hashchange'));
}

/// A 401 from a screen's call: back to sign-in with a message. True when handled.
export function handleAuth(e: unknown): boolean {
  if (e instanceof ApiError && e.status === 401) {
    signOut('Your credential is no longer accepted (it may have expired). Sign in again.');
    return true;
  }
  return false;
}
