import { inject } from '@angular/core';
import { CanActivateFn, Router, Routes } from '@angular/router';
import { AuthService } from './core/auth.service';

export const requireLogin: CanActivateFn = (_route, state) => {
  const auth = inject(AuthService);
  return auth.isLoggedIn() ? true : inject(Router).createUrlTree(['/login'], { queryParams: { returnUrl: state.url } });
};

/** Exports are for Admin/SuperAdmin; the API refuses Managers with 403 as well. */
export const requireExportRole: CanActivateFn = () => {
  const auth = inject(AuthService);
  return auth.canExport() ? true : inject(Router).createUrlTree(['/']);
};

export const routes: Routes = [
  { path: 'login', loadComponent: () => import('./features/login/login.component').then((m) => m.LoginComponent), title: 'Sign in · AI Usage' },
  {
    path: '',
    canActivate: [requireLogin],
    children: [
      { path: '', pathMatch: 'full', loadComponent: () => import('./features/overview/overview.component').then((m) => m.OverviewComponent), title: 'Overview · AI Usage' },
      { path: 'alerts', loadComponent: () => import('./features/alerts/alerts.component').then((m) => m.AlertsComponent), title: 'Alerts · AI Usage' },
      {
        path: 'exports',
        canActivate: [requireExportRole],
        loadComponent: () => import('./features/exports/exports.component').then((m) => m.ExportsComponent),
        title: 'Exports · AI Usage',
      },
    ],
  },
  { path: '**', redirectTo: '' },
];
