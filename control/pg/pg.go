// Package pg is the PostgreSQL control plane, for several fn serve replicas sharing one
// database. It keeps the contract of control.Plane (control/controltest) with the database's
// transactions and constraints, and announces every change of an environment's active version
// with NOTIFY, so that replicas that did not deploy switch too (Watch).
package pg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/fnhq/fn/api"
	"github.com/fnhq/fn/control"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Channel is the NOTIFY channel of control-plane changes; the payload is the app id.
const Channel = "fn_control"

// Plane is the PostgreSQL control plane.
type Plane struct {
	pool *pgxpool.Pool
	own  bool // Close closes the pool
}

var _ control.Plane = (*Plane)(nil)

// New returns a plane over a pool migrated by pgdb.Open; Close leaves the pool open unless
// own is true.
func New(pool *pgxpool.Pool, own bool) *Plane { return &Plane{pool: pool, own: own} }

// Close implements control.Plane.
func (p *Plane) Close() error {
	if p.own {
		p.pool.Close()
	}
	return nil
}

func wrap(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("control plane: %w", err)
}

func isUnique(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

func (p *Plane) tx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, p.pool, fn)
}

// AdminTokenHash implements control.Plane.
func (p *Plane) AdminTokenHash(ctx context.Context) (string, error) {
	var h string
	err := p.pool.QueryRow(ctx, `SELECT value FROM fn_meta WHERE key = 'admin_token_hash'`).Scan(&h)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return h, wrap(err)
}

// SetAdminTokenHash implements control.Plane. Replicas that cache the hash hear of the change
// (an empty payload: no app) and drop it, so a replaced token stops working everywhere.
func (p *Plane) SetAdminTokenHash(ctx context.Context, hash string) error {
	return p.tx(ctx, func(tx pgx.Tx) error {
		var old string
		err := tx.QueryRow(ctx, `SELECT value FROM fn_meta WHERE key = 'admin_token_hash'`).Scan(&old)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return wrap(err)
		}
		if err == nil && old == hash {
			return nil // replicas starting with the same token change nothing
		}
		if _, err := tx.Exec(ctx, `INSERT INTO fn_meta (key, value) VALUES ('admin_token_hash', $1)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, hash); err != nil {
			return wrap(err)
		}
		return notify(ctx, tx, "")
	})
}

// CreateApp implements control.Plane.
func (p *Plane) CreateApp(ctx context.Context, app api.App, wxSecret string) error {
	if app.ID == "" || app.Name == "" {
		return fmt.Errorf("control plane: an app needs an id and a name (got %q, %q)", app.ID, app.Name)
	}
	exists := fmt.Errorf("app %s (%s): %w", app.Name, app.ID, control.ErrExists)
	err := p.tx(ctx, func(tx pgx.Tx) error {
		// ids and names share one namespace (App takes either): serialise app creation so that
		// the check below and the insert are one step across replicas
		if _, err := tx.Exec(ctx, `LOCK TABLE fn_apps IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM fn_apps WHERE id IN ($1, $2) OR name IN ($1, $2)`, app.ID, app.Name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return exists
		}
		if _, err := tx.Exec(ctx, `INSERT INTO fn_apps (id, name, app_key, master_key, hook_key, env_id, wx_app_id, wx_secret, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			app.ID, app.Name, app.AppKey, app.MasterKey, app.HookKey, app.EnvID, app.WXAppID, wxSecret, app.CreatedAt.UTC()); err != nil {
			return err
		}
		return notify(ctx, tx, app.ID)
	})
	if isUnique(err) {
		return exists
	}
	if errors.Is(err, control.ErrExists) {
		return err
	}
	return wrap(err)
}

const appColumns = `id, name, app_key, master_key, hook_key, env_id, wx_app_id, created_at`

func scanApp(r pgx.Row) (api.App, error) {
	var a api.App
	err := r.Scan(&a.ID, &a.Name, &a.AppKey, &a.MasterKey, &a.HookKey, &a.EnvID, &a.WXAppID, &a.CreatedAt)
	a.CreatedAt = a.CreatedAt.UTC()
	return a, err
}

// Apps implements control.Plane.
func (p *Plane) Apps(ctx context.Context) ([]api.App, error) {
	rows, err := p.pool.Query(ctx, `SELECT `+appColumns+` FROM fn_apps ORDER BY name`)
	if err != nil {
		return nil, wrap(err)
	}
	defer rows.Close()
	out := []api.App{}
	for rows.Next() {
		a, err := scanApp(rows)
		if err != nil {
			return nil, wrap(err)
		}
		out = append(out, a)
	}
	return out, wrap(rows.Err())
}

// App implements control.Plane.
func (p *Plane) App(ctx context.Context, idOrName string) (api.App, error) {
	a, err := scanApp(p.pool.QueryRow(ctx, `SELECT `+appColumns+` FROM fn_apps WHERE id = $1 OR name = $1 ORDER BY id = $1 DESC LIMIT 1`, idOrName))
	if errors.Is(err, pgx.ErrNoRows) {
		return api.App{}, fmt.Errorf("app %q: %w", idOrName, control.ErrNotFound)
	}
	return a, wrap(err)
}

type queryRower interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// appExists fails with ErrNotFound for an unknown app id; in a transaction it locks the app's
// row against a concurrent DeleteApp.
func appExists(ctx context.Context, q queryRower, appID string, lock bool) error {
	sql := `SELECT 1 FROM fn_apps WHERE id = $1`
	if lock {
		sql += ` FOR SHARE`
	}
	var one int
	err := q.QueryRow(ctx, sql, appID).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("app %q: %w", appID, control.ErrNotFound)
	}
	return wrap(err)
}

// notify announces a change of app in the transaction: listeners hear it at commit.
func notify(ctx context.Context, tx pgx.Tx, appID string) error {
	_, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, Channel, appID)
	return wrap(err)
}

// DeleteApp implements control.Plane. The version counter stays.
func (p *Plane) DeleteApp(ctx context.Context, id string) error {
	return p.tx(ctx, func(tx pgx.Tx) error {
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM fn_apps WHERE id = $1 FOR UPDATE`, id).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("app %q: %w", id, control.ErrNotFound)
		}
		if err != nil {
			return wrap(err)
		}
		for _, table := range []string{"fn_versions", "fn_active", "fn_secrets", "fn_wx_sessions", "fn_online"} {
			if _, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE app_id = $1`, id); err != nil {
				return wrap(err)
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM fn_apps WHERE id = $1`, id); err != nil {
			return wrap(err)
		}
		return notify(ctx, tx, id)
	})
}

// WXSecret implements control.Plane.
func (p *Plane) WXSecret(ctx context.Context, appID string) (string, error) {
	var secret string
	err := p.pool.QueryRow(ctx, `SELECT wx_secret FROM fn_apps WHERE id = $1`, appID).Scan(&secret)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("app %q: %w", appID, control.ErrNotFound)
	}
	return secret, wrap(err)
}

// CreateVersion implements control.Plane: the counter row's lock orders concurrent calls.
// The commit is announced on Channel, so that other replicas can prepare the version while the
// deploying one loads it (Pending).
func (p *Plane) CreateVersion(ctx context.Context, appID string, v api.Version) (api.Version, error) {
	if v.Env == "" {
		return api.Version{}, fmt.Errorf("control plane: a version needs an environment")
	}
	manifest, err := json.Marshal(v.Manifest)
	if err != nil {
		return api.Version{}, fmt.Errorf("control plane: manifest: %w", err)
	}
	err = p.tx(ctx, func(tx pgx.Tx) error {
		if err := appExists(ctx, tx, appID, true); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `INSERT INTO fn_version_counters (app_id, last) VALUES ($1, 1)
			ON CONFLICT (app_id) DO UPDATE SET last = fn_version_counters.last + 1 RETURNING last`, appID).Scan(&v.ID); err != nil {
			return wrap(err)
		}
		_, err := tx.Exec(ctx, `INSERT INTO fn_versions (app_id, id, env, created_at, message, who, digest, manifest, promoted)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			appID, v.ID, v.Env, v.CreatedAt.UTC(), v.Message, v.Who, v.Digest, string(manifest), v.Promoted)
		if err != nil {
			return wrap(err)
		}
		return notify(ctx, tx, appID)
	})
	if err != nil {
		return api.Version{}, err
	}
	v.Active = false
	return v, nil
}

// DiscardVersion implements control.Plane.
func (p *Plane) DiscardVersion(ctx context.Context, appID string, id int) error {
	return p.tx(ctx, func(tx pgx.Tx) error {
		if err := appExists(ctx, tx, appID, true); err != nil {
			return err
		}
		var everActive bool
		err := tx.QueryRow(ctx, `SELECT ever_active FROM fn_versions WHERE app_id = $1 AND id = $2 FOR UPDATE`, appID, id).Scan(&everActive)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("version %d of app %s: %w", id, appID, control.ErrNotFound)
		}
		if err != nil {
			return wrap(err)
		}
		if everActive {
			return fmt.Errorf("version %d of app %s has been active and is kept: %w", id, appID, control.ErrConflict)
		}
		_, err = tx.Exec(ctx, `DELETE FROM fn_versions WHERE app_id = $1 AND id = $2`, appID, id)
		return wrap(err)
	})
}

// Activate implements control.Plane; other replicas hear of it on Channel.
func (p *Plane) Activate(ctx context.Context, appID, env string, id int) error {
	return p.activate(ctx, appID, env, id, false)
}

// ActivateDeploy is Activate for a deploy, which two replicas may run for the same environment
// at once: the later version wins. It refuses (ErrSuperseded) a version when a later version of
// env has been active meanwhile, so whatever order the two activations commit in, the
// environment ends on the later one. Rollbacks use Activate: they go back on purpose.
func (p *Plane) ActivateDeploy(ctx context.Context, appID, env string, id int) error {
	return p.activate(ctx, appID, env, id, true)
}

// ErrSuperseded is ActivateDeploy's answer for a version a later deploy has overtaken; it wraps
// control.ErrConflict.
var ErrSuperseded = fmt.Errorf("a later deploy wins: %w", control.ErrConflict)

func (p *Plane) activate(ctx context.Context, appID, env string, id int, deploy bool) error {
	return p.tx(ctx, func(tx pgx.Tx) error {
		if err := appExists(ctx, tx, appID, true); err != nil {
			return err
		}
		var venv string
		err := tx.QueryRow(ctx, `SELECT env FROM fn_versions WHERE app_id = $1 AND id = $2 FOR UPDATE`, appID, id).Scan(&venv)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("version %d of app %s: %w", id, appID, control.ErrNotFound)
		}
		if err != nil {
			return wrap(err)
		}
		if venv != env {
			return fmt.Errorf("version %d belongs to %s, not %s: %w", id, venv, env, control.ErrConflict)
		}
		if deploy {
			// the environment's active row orders concurrent activations of env: lock it (or,
			// before the first activation, the counter row every version of the app takes)
			if _, err := tx.Exec(ctx, `SELECT 1 FROM fn_version_counters WHERE app_id = $1 FOR UPDATE`, appID); err != nil {
				return wrap(err)
			}
			var later int
			err := tx.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM fn_versions WHERE app_id = $1 AND env = $2 AND id > $3 AND ever_active`,
				appID, env, id).Scan(&later)
			if err != nil {
				return wrap(err)
			}
			if later > 0 {
				return fmt.Errorf("version %d of %s was deployed meanwhile and has been active: %w", later, env, ErrSuperseded)
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO fn_active (app_id, env, version_id) VALUES ($1, $2, $3)
			ON CONFLICT (app_id, env) DO UPDATE SET version_id = excluded.version_id`, appID, env, id); err != nil {
			return wrap(err)
		}
		if _, err := tx.Exec(ctx, `UPDATE fn_versions SET ever_active = true WHERE app_id = $1 AND id = $2`, appID, id); err != nil {
			return wrap(err)
		}
		return notify(ctx, tx, appID)
	})
}

const versionSelect = `SELECT v.id, v.env, v.created_at, v.message, v.who, v.digest, v.manifest::text, v.promoted, a.version_id IS NOT NULL
	FROM fn_versions v LEFT JOIN fn_active a ON a.app_id = v.app_id AND a.env = v.env AND a.version_id = v.id`

func scanVersion(r pgx.Row) (api.Version, error) {
	var v api.Version
	var manifest string
	if err := r.Scan(&v.ID, &v.Env, &v.CreatedAt, &v.Message, &v.Who, &v.Digest, &manifest, &v.Promoted, &v.Active); err != nil {
		return v, err
	}
	v.CreatedAt = v.CreatedAt.UTC()
	if err := json.Unmarshal([]byte(manifest), &v.Manifest); err != nil {
		return v, fmt.Errorf("control plane: manifest of version %d: %w", v.ID, err)
	}
	return v, nil
}

// Versions implements control.Plane.
func (p *Plane) Versions(ctx context.Context, appID string) ([]api.Version, error) {
	var out []api.Version
	err := pgx.BeginTxFunc(ctx, p.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := appExists(ctx, tx, appID, false); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, versionSelect+` WHERE v.app_id = $1 ORDER BY v.id`, appID)
		if err != nil {
			return wrap(err)
		}
		defer rows.Close()
		out = []api.Version{}
		for rows.Next() {
			v, err := scanVersion(rows)
			if err != nil {
				return wrap(err)
			}
			out = append(out, v)
		}
		return wrap(rows.Err())
	})
	return out, err
}

// Version implements control.Plane.
func (p *Plane) Version(ctx context.Context, appID string, id int) (api.Version, error) {
	v, err := scanVersion(p.pool.QueryRow(ctx, versionSelect+` WHERE v.app_id = $1 AND v.id = $2`, appID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		if err := appExists(ctx, p.pool, appID, false); err != nil {
			return api.Version{}, err
		}
		return api.Version{}, fmt.Errorf("version %d of app %s: %w", id, appID, control.ErrNotFound)
	}
	return v, wrap(err)
}

// Active implements control.Plane.
func (p *Plane) Active(ctx context.Context, appID, env string) (api.Version, error) {
	v, err := scanVersion(p.pool.QueryRow(ctx, versionSelect+` WHERE v.app_id = $1 AND a.env = $2`, appID, env))
	if errors.Is(err, pgx.ErrNoRows) {
		if err := appExists(ctx, p.pool, appID, false); err != nil {
			return api.Version{}, err
		}
		return api.Version{}, fmt.Errorf("no active version of %s in app %s: %w", env, appID, control.ErrNotFound)
	}
	return v, wrap(err)
}

// Pending is the newest version of env when it is newer than the active one and has never been
// active: a deploy under way on some replica (or one whose activation failed and will be
// discarded). ErrNotFound when there is none.
func (p *Plane) Pending(ctx context.Context, appID, env string) (api.Version, error) {
	v, err := scanVersion(p.pool.QueryRow(ctx, versionSelect+` WHERE v.app_id = $1 AND v.env = $2 AND NOT v.ever_active
		AND v.id > coalesce((SELECT version_id FROM fn_active WHERE app_id = $1 AND env = $2), 0)
		ORDER BY v.id DESC LIMIT 1`, appID, env))
	if errors.Is(err, pgx.ErrNoRows) {
		return api.Version{}, fmt.Errorf("no pending version of %s in app %s: %w", env, appID, control.ErrNotFound)
	}
	return v, wrap(err)
}

// SetSecret implements control.Plane.
func (p *Plane) SetSecret(ctx context.Context, appID, name, value string) error {
	if name == "" {
		return fmt.Errorf("control plane: a secret needs a name")
	}
	return p.tx(ctx, func(tx pgx.Tx) error {
		if err := appExists(ctx, tx, appID, true); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO fn_secrets (app_id, name, value) VALUES ($1, $2, $3)
			ON CONFLICT (app_id, name) DO UPDATE SET value = excluded.value`, appID, name, value); err != nil {
			return wrap(err)
		}
		return notify(ctx, tx, appID)
	})
}

// DeleteSecret implements control.Plane.
func (p *Plane) DeleteSecret(ctx context.Context, appID, name string) error {
	return p.tx(ctx, func(tx pgx.Tx) error {
		if err := appExists(ctx, tx, appID, true); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM fn_secrets WHERE app_id = $1 AND name = $2`, appID, name)
		if err != nil {
			return wrap(err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("secret %q of app %s: %w", name, appID, control.ErrNotFound)
		}
		return notify(ctx, tx, appID)
	})
}

// Secrets implements control.Plane.
func (p *Plane) Secrets(ctx context.Context, appID string) (map[string]string, error) {
	out := map[string]string{}
	err := pgx.BeginTxFunc(ctx, p.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := appExists(ctx, tx, appID, false); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT name, value FROM fn_secrets WHERE app_id = $1`, appID)
		if err != nil {
			return wrap(err)
		}
		defer rows.Close()
		for rows.Next() {
			var k, v string
			if err := rows.Scan(&k, &v); err != nil {
				return wrap(err)
			}
			out[k] = v
		}
		return wrap(rows.Err())
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// PutSession implements control.Plane; expired sessions are dropped on the way.
func (p *Plane) PutSession(ctx context.Context, token string, s control.Session) error {
	if token == "" {
		return fmt.Errorf("control plane: a session needs a token")
	}
	return p.tx(ctx, func(tx pgx.Tx) error {
		if err := appExists(ctx, tx, s.AppID, true); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM fn_wx_sessions WHERE expires <= now()`); err != nil {
			return wrap(err)
		}
		_, err := tx.Exec(ctx, `INSERT INTO fn_wx_sessions (token_hash, app_id, open_id, wx_app_id, union_id, expires) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (token_hash) DO UPDATE SET app_id = excluded.app_id, open_id = excluded.open_id, wx_app_id = excluded.wx_app_id,
			union_id = excluded.union_id, expires = excluded.expires`,
			control.TokenHash(token), s.AppID, s.OpenID, s.WXAppID, s.UnionID, s.Expires.UTC().Truncate(time.Millisecond))
		return wrap(err)
	})
}

// Session implements control.Plane.
func (p *Plane) Session(ctx context.Context, token string) (control.Session, error) {
	var s control.Session
	err := p.pool.QueryRow(ctx, `SELECT app_id, open_id, wx_app_id, union_id, expires FROM fn_wx_sessions WHERE token_hash = $1 AND expires > now()`,
		control.TokenHash(token)).Scan(&s.AppID, &s.OpenID, &s.WXAppID, &s.UnionID, &s.Expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return control.Session{}, fmt.Errorf("session: %w", control.ErrNotFound)
	}
	if err != nil {
		return control.Session{}, wrap(err)
	}
	s.Expires = s.Expires.UTC()
	return s, nil
}

// PutConsoleSession implements control.Plane; expired console sessions are dropped on the way.
func (p *Plane) PutConsoleSession(ctx context.Context, token string, cs control.ConsoleSession) error {
	if token == "" {
		return fmt.Errorf("control plane: a console session needs a token")
	}
	return p.tx(ctx, func(tx pgx.Tx) error {
		if !cs.Admin {
			if err := appExists(ctx, tx, cs.AppID, true); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM fn_console_sessions WHERE expires <= now()`); err != nil {
			return wrap(err)
		}
		_, err := tx.Exec(ctx, `INSERT INTO fn_console_sessions (token_hash, admin, app_id, app_name, csrf, expires) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (token_hash) DO UPDATE SET admin = excluded.admin, app_id = excluded.app_id, app_name = excluded.app_name,
			csrf = excluded.csrf, expires = excluded.expires`,
			control.TokenHash(token), cs.Admin, cs.AppID, cs.AppName, cs.CSRF, cs.Expires.UTC().Truncate(time.Millisecond))
		return wrap(err)
	})
}

// ConsoleSession implements control.Plane.
func (p *Plane) ConsoleSession(ctx context.Context, token string) (control.ConsoleSession, error) {
	var cs control.ConsoleSession
	err := p.pool.QueryRow(ctx, `SELECT admin, app_id, app_name, csrf, expires FROM fn_console_sessions WHERE token_hash = $1 AND expires > now()`,
		control.TokenHash(token)).Scan(&cs.Admin, &cs.AppID, &cs.AppName, &cs.CSRF, &cs.Expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return control.ConsoleSession{}, fmt.Errorf("console session: %w", control.ErrNotFound)
	}
	if err != nil {
		return control.ConsoleSession{}, wrap(err)
	}
	cs.Expires = cs.Expires.UTC()
	return cs, nil
}

// DeleteConsoleSession implements control.Plane.
func (p *Plane) DeleteConsoleSession(ctx context.Context, token string) error {
	_, err := p.pool.Exec(ctx, `DELETE FROM fn_console_sessions WHERE token_hash = $1`, control.TokenHash(token))
	return wrap(err)
}

// Poll is how often Changes signals without a notification, in case one was lost (a dropped
// connection while another replica deployed).
var Poll = time.Second

// Changes signals after every committed change any replica announces on Channel (deploys,
// rollbacks, secrets, apps), and every Poll; it is closed when ctx ends. Signals coalesce: a
// reader that is busy gets one for everything that happened meanwhile.
func (p *Plane) Changes(ctx context.Context) <-chan struct{} {
	out := make(chan struct{}, 1)
	signal := func() {
		select {
		case out <- struct{}{}:
		default:
		}
	}
	heard := make(chan struct{}, 1)
	go func() {
		for ctx.Err() == nil {
			conn, err := p.pool.Acquire(ctx)
			if err == nil {
				_, err = conn.Exec(ctx, `LISTEN `+Channel)
				if err == nil {
					// whatever changed while nobody listened
					select {
					case heard <- struct{}{}:
					default:
					}
				}
				for err == nil {
					_, err = conn.Conn().WaitForNotification(ctx)
					if err == nil {
						select {
						case heard <- struct{}{}:
						default:
						}
					}
				}
				// a connection left listening must not go back to the pool
				conn.Conn().Close(context.Background())
				conn.Release()
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}()
	go func() {
		defer close(out)
		tick := time.NewTicker(Poll)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-heard:
				signal()
			case <-tick.C:
				signal()
			}
		}
	}()
	return out
}

// SaveOnline implements control.Plane. The app's row is locked for the save: revisions of
// concurrent saves (from any replica) are consecutive.
func (p *Plane) SaveOnline(ctx context.Context, appID string, f api.OnlineFunction) (api.OnlineFunction, error) {
	if f.Name == "" {
		return f, fmt.Errorf("control plane: an online function needs a name")
	}
	err := p.tx(ctx, func(tx pgx.Tx) error {
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM fn_apps WHERE id = $1 FOR UPDATE`, appID).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("app %q: %w", appID, control.ErrNotFound)
		}
		if err != nil {
			return wrap(err)
		}
		var last int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(revision), 0) FROM fn_online WHERE app_id = $1 AND name = $2`, appID, f.Name).Scan(&last); err != nil {
			return wrap(err)
		}
		f.Revision, f.Updated = last+1, time.Now().UTC().Truncate(time.Microsecond)
		if _, err := tx.Exec(ctx, `INSERT INTO fn_online (app_id, name, revision, type, class, hook, cron, code, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, appID, f.Name, f.Revision, f.Type, f.Class, f.Hook, f.Cron, f.Code, f.Updated); err != nil {
			return wrap(err)
		}
		_, err = tx.Exec(ctx, `DELETE FROM fn_online WHERE app_id = $1 AND name = $2 AND revision <= $3`, appID, f.Name, f.Revision-control.MaxOnlineRevisions)
		return wrap(err)
	})
	return f, err
}

const onlineColumns = `name, revision, type, class, hook, cron, code, created_at`

func scanOnline(sc interface{ Scan(...any) error }) (api.OnlineFunction, error) {
	var f api.OnlineFunction
	err := sc.Scan(&f.Name, &f.Revision, &f.Type, &f.Class, &f.Hook, &f.Cron, &f.Code, &f.Updated)
	f.Updated = f.Updated.UTC()
	return f, err
}

// OnlineFunctions implements control.Plane.
func (p *Plane) OnlineFunctions(ctx context.Context, appID string) ([]api.OnlineFunction, error) {
	if err := appExists(ctx, p.pool, appID, false); err != nil {
		return nil, err
	}
	rows, err := p.pool.Query(ctx, `SELECT DISTINCT ON (name) `+onlineColumns+` FROM fn_online WHERE app_id = $1
		ORDER BY name, revision DESC`, appID)
	if err != nil {
		return nil, wrap(err)
	}
	defer rows.Close()
	out := []api.OnlineFunction{}
	for rows.Next() {
		f, err := scanOnline(rows)
		if err != nil {
			return nil, wrap(err)
		}
		out = append(out, f)
	}
	return out, wrap(rows.Err())
}

// OnlineFunction implements control.Plane.
func (p *Plane) OnlineFunction(ctx context.Context, appID, name string) (api.OnlineFunction, error) {
	if err := appExists(ctx, p.pool, appID, false); err != nil {
		return api.OnlineFunction{}, err
	}
	f, err := scanOnline(p.pool.QueryRow(ctx, `SELECT `+onlineColumns+` FROM fn_online WHERE app_id = $1 AND name = $2
		ORDER BY revision DESC LIMIT 1`, appID, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return f, fmt.Errorf("online function %q of app %s: %w", name, appID, control.ErrNotFound)
	}
	return f, wrap(err)
}

// OnlineHistory implements control.Plane.
func (p *Plane) OnlineHistory(ctx context.Context, appID, name string) ([]api.OnlineRevision, error) {
	if err := appExists(ctx, p.pool, appID, false); err != nil {
		return nil, err
	}
	rows, err := p.pool.Query(ctx, `SELECT revision, code, created_at FROM fn_online WHERE app_id = $1 AND name = $2
		ORDER BY revision DESC`, appID, name)
	if err != nil {
		return nil, wrap(err)
	}
	defer rows.Close()
	var out []api.OnlineRevision
	for rows.Next() {
		var r api.OnlineRevision
		if err := rows.Scan(&r.Revision, &r.Code, &r.Time); err != nil {
			return nil, wrap(err)
		}
		r.Time = r.Time.UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("online function %q of app %s: %w", name, appID, control.ErrNotFound)
	}
	return out, nil
}

// DeleteOnline implements control.Plane.
func (p *Plane) DeleteOnline(ctx context.Context, appID, name string) error {
	return p.tx(ctx, func(tx pgx.Tx) error {
		if err := appExists(ctx, tx, appID, true); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM fn_online WHERE app_id = $1 AND name = $2`, appID, name)
		if err != nil {
			return wrap(err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("online function %q of app %s: %w", name, appID, control.ErrNotFound)
		}
		return nil
	})
}
