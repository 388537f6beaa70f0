-- Staff identities are cached in each process by their token's digest (as gate contexts are,
-- migration 0013). A token revoked or changed, by the API or by hand in SQL, notifies every
-- process to forget its cache. A new token needs no notice: unknown tokens are never cached.
create trigger staff_tokens_changed
    after update or delete or truncate
    on staff_tokens for each statement execute function notify_gate_contexts();
