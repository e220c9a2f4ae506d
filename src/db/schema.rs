// Diesel table definitions, kept in step with `migrations/` by hand.

diesel::table! {
    regions (code) {
        code -> Text,
        parent_code -> Nullable<Text>,
        level -> Int2,
        kind -> Text,
        name -> Text,
        postal_code -> Nullable<Text>,
    }
}

diesel::table! {
    users (id) {
        id -> Uuid,
        phone -> Text,
        name -> Text,
        password_hash -> Text,
        is_platform_admin -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    villages (code) {
        code -> Text,
        name -> Text,
        idm_status -> Nullable<Text>,
        village_share_bps -> Int4,
        onboarded_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    networks (id) {
        id -> Uuid,
        name -> Text,
        network_fee_bps -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    network_villages (network_id, village_code) {
        network_id -> Uuid,
        village_code -> Text,
        joined_at -> Timestamptz,
    }
}

diesel::table! {
    memberships (user_id, village_code) {
        user_id -> Uuid,
        village_code -> Text,
        roles -> Array<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> Uuid,
        family_id -> Uuid,
        user_id -> Uuid,
        token_hash -> Bytea,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    login_attempts (bucket, window_start) {
        bucket -> Text,
        window_start -> Timestamptz,
        attempts -> Int4,
    }
}

diesel::table! {
    bumdes (id) {
        id -> Uuid,
        village_code -> Text,
        name -> Text,
        kind -> Text,
        legal_number -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    bumdes_villages (bumdes_id, village_code) {
        bumdes_id -> Uuid,
        village_code -> Text,
        invited_by -> Nullable<Uuid>,
        accepted_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    refresh_families (id) {
        id -> Uuid,
        user_id -> Uuid,
        village_code -> Nullable<Text>,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    password_resets (id) {
        id -> Uuid,
        user_id -> Uuid,
        code_hash -> Bytea,
        issued_by -> Uuid,
        village_code -> Text,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    bumdes_units (id) {
        id -> Uuid,
        bumdes_id -> Uuid,
        village_code -> Text,
        name -> Text,
        sector -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    shops (id) {
        id -> Uuid,
        village_code -> Text,
        name -> Text,
        description -> Text,
        kind -> Text,
        bumdes_unit_id -> Nullable<Uuid>,
        status -> Text,
        status_reason -> Nullable<Text>,
        delivery_fee_village_idr -> Int8,
        delivery_fee_other_idr -> Int8,
        pickup -> Bool,
        created_by -> Uuid,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    shop_operators (shop_id, user_id) {
        shop_id -> Uuid,
        user_id -> Uuid,
        added_at -> Timestamptz,
    }
}

diesel::table! {
    audit_log (id) {
        id -> Uuid,
        actor_id -> Nullable<Uuid>,
        village_code -> Nullable<Text>,
        action -> Text,
        entity_type -> Text,
        entity_id -> Text,
        before -> Nullable<Jsonb>,
        after -> Nullable<Jsonb>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    categories (slug) {
        slug -> Text,
        name -> Text,
        position -> Int4,
    }
}

diesel::table! {
    products (id) {
        id -> Uuid,
        shop_id -> Uuid,
        village_code -> Text,
        name -> Text,
        description -> Text,
        category -> Text,
        unit -> Text,
        price_idr -> Int8,
        discount_kind -> Nullable<Text>,
        discount_value -> Nullable<Int8>,
        final_price_idr -> Int8,
        stock -> Int4,
        weight_grams -> Nullable<Int4>,
        photo_urls -> Array<Text>,
        certifications -> Array<Text>,
        flagship -> Bool,
        status -> Text,
        version -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        published_at -> Nullable<Timestamptz>,
        opening_stock -> Int4,
    }
}

diesel::table! {
    stock_adjustments (id) {
        id -> Uuid,
        product_id -> Uuid,
        delta -> Int4,
        stock_after -> Int4,
        reason -> Text,
        actor_id -> Uuid,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    /// Responses remembered per (caller, Idempotency-Key); see `crate::http::idempotency`.
    idempotency_keys (caller_id, key) {
        caller_id -> Uuid,
        key -> Text,
        operation -> Text,
        request_hash -> Bytea,
        response_status -> Int2,
        response_body -> Json,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    accounts (id) {
        id -> Uuid,
        kind -> Text,
        village_code -> Nullable<Text>,
        user_id -> Nullable<Uuid>,
        shop_id -> Nullable<Uuid>,
        network_id -> Nullable<Uuid>,
        balance_idr -> Int8,
        entry_count -> Int8,
        created_at -> Timestamptz,
        programme_id -> Nullable<Uuid>,
    }
}

diesel::table! {
    orders (id) {
        id -> Uuid,
        checkout_id -> Uuid,
        status -> Text,
        buyer_user_id -> Uuid,
        buyer_shop_id -> Nullable<Uuid>,
        buyer_account_id -> Uuid,
        buyer_village_code -> Text,
        shop_id -> Uuid,
        village_code -> Text,
        escrow_account_id -> Uuid,
        network_id -> Nullable<Uuid>,
        network_fee_bps -> Int4,
        village_share_bps -> Int4,
        platform_fee_bps -> Int4,
        delivery_method -> Text,
        delivery_address -> Nullable<Text>,
        delivery_fee_idr -> Int8,
        items_total_idr -> Int8,
        total_idr -> Int8,
        note -> Nullable<Text>,
        courier_name -> Nullable<Text>,
        courier_phone -> Nullable<Text>,
        tracking_note -> Nullable<Text>,
        placed_at -> Timestamptz,
        shipped_at -> Nullable<Timestamptz>,
        updated_at -> Timestamptz,
        aid_paid_idr -> Int8,
    }
}

diesel::table! {
    order_lines (order_id, line_no) {
        order_id -> Uuid,
        line_no -> Int4,
        product_id -> Uuid,
        name -> Text,
        unit -> Text,
        unit_price_idr -> Int8,
        quantity -> Int4,
        line_total_idr -> Int8,
    }
}

diesel::table! {
    order_events (id) {
        id -> Uuid,
        order_id -> Uuid,
        from_status -> Nullable<Text>,
        to_status -> Text,
        actor_id -> Nullable<Uuid>,
        actor -> Text,
        note -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    ledger_transactions (id) {
        id -> Uuid,
        kind -> Text,
        order_id -> Nullable<Uuid>,
        actor_id -> Nullable<Uuid>,
        note -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    postings (id) {
        id -> Uuid,
        transaction_id -> Uuid,
        account_id -> Uuid,
        amount_idr -> Int8,
        balance_after_idr -> Int8,
        entry_no -> Int8,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    aid_programmes (id) {
        id -> Uuid,
        village_code -> Text,
        name -> Text,
        kind -> Text,
        scope -> Text,
        network_id -> Nullable<Uuid>,
        starts_on -> Date,
        ends_on -> Date,
        created_by -> Uuid,
        created_at -> Timestamptz,
        closed_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    order_aid (order_id, programme_id) {
        order_id -> Uuid,
        programme_id -> Uuid,
        account_id -> Uuid,
        amount_idr -> Int8,
    }
}

// Reports' rollups (migration 2026-12-01-000006_reports), kept by a trigger on postings and read
// with SQL by `crate::reports`.
diesel::table! {
    report_trade_daily (seller_village, day, buyer_village) {
        seller_village -> Text,
        day -> Date,
        buyer_village -> Text,
        orders -> Int8,
        gmv_idr -> Int8,
        aid_idr -> Int8,
        seller_net_idr -> Int8,
    }
}

diesel::table! {
    report_product_daily (village_code, day, product_id) {
        village_code -> Text,
        day -> Date,
        product_id -> Uuid,
        quantity -> Int8,
        revenue_idr -> Int8,
    }
}

diesel::table! {
    report_ledger_daily (village_code, day, account_kind, tx_kind) {
        village_code -> Text,
        day -> Date,
        account_kind -> Text,
        tx_kind -> Text,
        credit_idr -> Int8,
        debit_idr -> Int8,
    }
}

diesel::table! {
    report_aid_spent_daily (programme_id, day, shop_id) {
        programme_id -> Uuid,
        day -> Date,
        shop_id -> Uuid,
        programme_village -> Text,
        seller_village -> Text,
        amount_idr -> Int8,
    }
}

diesel::table! {
    report_holder_daily (village_code, day, holder_id) {
        village_code -> Text,
        day -> Date,
        holder_id -> Uuid,
        topup_idr -> Int8,
        aid_idr -> Int8,
        settlement_idr -> Int8,
        other_idr -> Int8,
    }
}

diesel::table! {
    report_spend_daily (seller_village, day, buyer_id, shop_id) {
        seller_village -> Text,
        day -> Date,
        buyer_id -> Uuid,
        shop_id -> Uuid,
        buyer_village -> Text,
        spend_idr -> Int8,
        net_idr -> Int8,
    }
}

diesel::joinable!(products -> shops (shop_id));
diesel::joinable!(stock_adjustments -> products (product_id));
diesel::joinable!(memberships -> users (user_id));
diesel::joinable!(memberships -> villages (village_code));
diesel::joinable!(shop_operators -> shops (shop_id));
diesel::joinable!(shop_operators -> users (user_id));
diesel::joinable!(bumdes_units -> bumdes (bumdes_id));
diesel::joinable!(bumdes_villages -> bumdes (bumdes_id));
diesel::joinable!(villages -> regions (code));
diesel::joinable!(refresh_tokens -> refresh_families (family_id));
diesel::joinable!(network_villages -> networks (network_id));
diesel::joinable!(network_villages -> villages (village_code));

diesel::joinable!(order_lines -> orders (order_id));
diesel::joinable!(order_events -> orders (order_id));
diesel::joinable!(postings -> ledger_transactions (transaction_id));
diesel::joinable!(postings -> accounts (account_id));

diesel::joinable!(order_aid -> orders (order_id));
diesel::joinable!(order_aid -> aid_programmes (programme_id));

diesel::allow_tables_to_appear_in_same_query!(
    aid_programmes,
    order_aid,
    regions,
    accounts,
    orders,
    order_lines,
    order_events,
    ledger_transactions,
    postings,
    refresh_families,
    password_resets,
    users,
    villages,
    networks,
    network_villages,
    memberships,
    refresh_tokens,
    login_attempts,
    bumdes,
    bumdes_villages,
    bumdes_units,
    shops,
    shop_operators,
    audit_log,
    categories,
    products,
    stock_adjustments,
);
