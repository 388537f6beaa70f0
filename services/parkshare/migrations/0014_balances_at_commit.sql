-- An account's cached balance is added to at commit, not at each posting. Every cash payment
-- of a firm posts to its one cash-on-hand account: with the balance updated at the posting,
-- that row stayed locked from the posting to the end of the transaction (the payment row, the
-- commit), and every other payment of the firm queued behind it. Added at commit, the row is
-- locked for the commit only. Nothing reads a balance inside a posting transaction; readers
-- see the balance and the postings change together, as before.
drop trigger postings_update_balance on postings;
create constraint trigger postings_update_balance after insert on postings
    deferrable initially deferred for each row execute function add_to_balance();
