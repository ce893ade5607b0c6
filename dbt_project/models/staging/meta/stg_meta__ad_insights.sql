with

source as (
    select * from {{ source('meta', 'ad_insights_daily') }}
),

actions as (
    -- one row per insights row x action; the value travels as a string
    select
        source."date",
        source.ad_id,
        json_extract_string(action.value, '$.action_type') as action_type,
        try_cast(json_extract_string(action.value, '$.value') as double) as action_count
    from source,
        lateral unnest(cast(coalesce(nullif(source.actions, ''), '[]') as json[])) as action (value)
),

pivoted as (
    select
        "date",
        ad_id,
        sum(action_count) filter (where action_type = 'offsite_conversion.fb_pixel_lead') as lead,
        sum(action_count) filter (where action_type = 'offsite_conversion.fb_pixel_purchase') as purchase,
        sum(action_count) filter (
            where action_type = 'offsite_conversion.fb_pixel_complete_registration'
        ) as complete_registration,
        sum(action_count) filter (where action_type = 'offsite_conversion.fb_pixel_page_view') as page_view
    from actions
    group by 1, 2
),

final as (
    select
        source."date",
        source.account_id,
        source.campaign_id,
        source.campaign_name,
        source.adset_id,
        source.adset_name,
        source.ad_id,
        source.ad_name,
        coalesce(source.spend, 0) as spend,
        coalesce(source.impressions, 0) as impressions,
        coalesce(source.reach, 0) as reach,
        coalesce(source.clicks, 0) as clicks,
        coalesce(source.inline_link_clicks, 0) as inline_link_clicks,
        coalesce(pivoted.lead, 0) as lead,
        coalesce(pivoted.purchase, 0) as purchase,
        coalesce(pivoted.complete_registration, 0) as complete_registration,
        coalesce(pivoted.page_view, 0) as page_view,
        source._loaded_at as loaded_at,
        source._run_id as run_id
    from source
    left join pivoted
        on source."date" = pivoted."date"
        and source.ad_id = pivoted.ad_id
)

select * from final
