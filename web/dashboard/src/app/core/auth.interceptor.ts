import { HttpErrorResponse, HttpInterceptorFn } from '@angular/common/http';
import { inject } from '@angular/core';
import { catchError, throwError } from 'rxjs';
import { AuthService } from './auth.service';

/**
 * Adds `Authorization: Bearer` and `X-Organization-Id` to API calls (contract.md "Tokens"),
 * and turns a 401 into the re-login dialog instead of a lost page.
 */
export const authInterceptor: HttpInterceptorFn = (req, next) => {
  const auth = inject(AuthService);
  const isLogin = req.url.endsWith('/api/auth/login');
  const token = auth.token();
  const org = auth.organizationId();
  let r = req;
  if (!isLogin && token) {
    const headers: Record<string, string> = { Authorization: `Bearer ${token}` };
    if (org) headers['X-Organization-Id'] = org;
    r = req.clone({ setHeaders: headers });
  }
  return next(r).pipe(
    catchError((err: unknown) => {
      if (!isLogin && err instanceof HttpErrorResponse && err.status === 401) auth.markUnauthorized();
      return throwError(() => err);
    }),
  );
};
