"""An analytical workload of the TPC-H kind, written in the PySpark DataFrame API as sparkflow stages over the
Parquet tables of ``generate.py``: TPC-H's queries 1, 3, 4, 5, 6, 10, 12, 13, 14, 16, 18 and 22 (parameters
fitted to the small database), and two more for what TPC-H leaves out (date parts and casts; ranking windows).
The DuckDB engine must give what Spark gives, values and schema (tests/runtime/test_tpch_parity.py)."""

import datetime

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

import sparkflow as sf

region = sf.source("region", "region/", format="parquet")
nation = sf.source("nation", "nation/", format="parquet")
supplier = sf.source("supplier", "supplier/", format="parquet")
customer = sf.source("customer", "customer/", format="parquet")
part = sf.source("part", "part/", format="parquet")
partsupp = sf.source("partsupp", "partsupp/", format="parquet")
orders = sf.source("orders", "orders/", format="parquet")
lineitem = sf.source("lineitem", "lineitem/", format="parquet")


def _revenue() -> DataFrame:
    return F.col("l_extendedprice") * (1 - F.col("l_discount"))


@sf.stage
def q1_pricing_summary(lineitem: DataFrame) -> DataFrame:
    return (
        lineitem.where(F.col("l_shipdate") <= F.lit(datetime.date(1998, 9, 2)))
        .groupBy("l_returnflag", "l_linestatus")
        .agg(
            F.sum("l_quantity").alias("sum_qty"),
            F.sum("l_extendedprice").alias("sum_base_price"),
            F.sum(_revenue()).alias("sum_disc_price"),
            F.sum(_revenue() * (1 + F.col("l_tax"))).alias("sum_charge"),
            F.avg("l_quantity").alias("avg_qty"),
            F.avg("l_extendedprice").alias("avg_price"),
            F.avg("l_discount").alias("avg_disc"),
            F.count("*").alias("count_order"),
        )
    )


@sf.stage
def q3_shipping_priority(customer: DataFrame, orders: DataFrame, lineitem: DataFrame) -> DataFrame:
    cutoff = F.lit(datetime.date(1995, 3, 15))
    return (
        customer.where(F.col("c_mktsegment") == "BUILDING")
        .join(orders.where(F.col("o_orderdate") < cutoff), F.col("c_custkey") == F.col("o_custkey"))
        .join(lineitem.where(F.col("l_shipdate") > cutoff), F.col("l_orderkey") == F.col("o_orderkey"))
        .groupBy("l_orderkey", "o_orderdate")
        .agg(F.sum(_revenue()).alias("revenue"))
        .orderBy(F.desc("revenue"), "o_orderdate", "l_orderkey")
        .limit(10)
    )


@sf.stage
def q4_order_priority(orders: DataFrame, lineitem: DataFrame) -> DataFrame:
    late = lineitem.where(F.col("l_commitdate") < F.col("l_receiptdate")).select(F.col("l_orderkey"))
    return (
        orders.where(F.col("o_orderdate").between(datetime.date(1993, 7, 1), datetime.date(1993, 12, 31)))
        .join(late, F.col("o_orderkey") == F.col("l_orderkey"), "left_semi")
        .groupBy("o_orderpriority")
        .agg(F.count("*").alias("order_count"))
    )


@sf.stage
def q5_local_supplier_volume(
    customer: DataFrame,
    orders: DataFrame,
    lineitem: DataFrame,
    supplier: DataFrame,
    nation: DataFrame,
    region: DataFrame,
) -> DataFrame:
    return (
        region.where(F.col("r_name") == "ASIA")
        .join(nation, F.col("r_regionkey") == F.col("n_regionkey"))
        .join(supplier, F.col("s_nationkey") == F.col("n_nationkey"))
        .join(lineitem, F.col("l_suppkey") == F.col("s_suppkey"))
        .join(orders.where(F.year("o_orderdate") == 1994), F.col("o_orderkey") == F.col("l_orderkey"))
        .join(customer, (F.col("c_custkey") == F.col("o_custkey")) & (F.col("c_nationkey") == F.col("s_nationkey")))
        .groupBy("n_name")
        .agg(F.sum(_revenue()).alias("revenue"))
    )


@sf.stage
def q6_forecast_revenue(lineitem: DataFrame) -> DataFrame:
    return lineitem.where(
        (F.col("l_shipdate") >= F.lit(datetime.date(1994, 1, 1)))
        & (F.col("l_shipdate") < F.lit(datetime.date(1995, 1, 1)))
        & F.col("l_discount").between(0.05, 0.07)
        & (F.col("l_quantity") < 24)
    ).agg(F.sum(F.col("l_extendedprice") * F.col("l_discount")).alias("revenue"))


@sf.stage
def q10_returned_items(customer: DataFrame, orders: DataFrame, lineitem: DataFrame, nation: DataFrame) -> DataFrame:
    return (
        customer.join(orders, F.col("c_custkey") == F.col("o_custkey"))
        .where(F.col("o_orderdate").between(datetime.date(1993, 10, 1), datetime.date(1994, 9, 30)))
        .join(lineitem.where(F.col("l_returnflag") == "R"), F.col("l_orderkey") == F.col("o_orderkey"))
        .join(nation, F.col("c_nationkey") == F.col("n_nationkey"))
        .groupBy("c_custkey", "c_name", "c_acctbal", "c_phone", "n_name")
        .agg(F.sum(_revenue()).alias("revenue"))
    )


@sf.stage
def q12_shipping_modes(orders: DataFrame, lineitem: DataFrame) -> DataFrame:
    urgent = F.col("o_orderpriority").isin("1-URGENT", "2-HIGH")
    return (
        lineitem.where(
            F.col("l_shipmode").isin("MAIL", "SHIP")
            & (F.col("l_commitdate") < F.col("l_receiptdate"))
            & (F.col("l_shipdate") < F.col("l_commitdate"))
        )
        .join(orders, F.col("o_orderkey") == F.col("l_orderkey"))
        .groupBy("l_shipmode")
        .agg(
            F.sum(F.when(urgent, 1).otherwise(0)).alias("high_line_count"),
            F.sum(F.when(~urgent, 1).otherwise(0)).alias("low_line_count"),
        )
    )


@sf.stage
def q13_customer_distribution(customer: DataFrame, orders: DataFrame) -> DataFrame:
    per_customer = (
        customer.join(orders, F.col("c_custkey") == F.col("o_custkey"), "left")
        .groupBy("c_custkey")
        .agg(F.count("o_orderkey").alias("c_count"))
    )
    return per_customer.groupBy("c_count").agg(F.count("*").alias("custdist"))


@sf.stage
def q14_promotion_effect(lineitem: DataFrame, part: DataFrame) -> DataFrame:
    promo = F.when(F.col("p_type").startswith("PROMO"), _revenue()).otherwise(0)
    return (
        lineitem.where(F.col("l_shipdate").between(datetime.date(1995, 9, 1), datetime.date(1995, 12, 31)))
        .join(part, F.col("l_partkey") == F.col("p_partkey"))
        .agg((100 * F.sum(promo) / F.sum(_revenue())).alias("promo_revenue"))
    )


@sf.stage
def q16_parts_supplier_relationship(partsupp: DataFrame, part: DataFrame, supplier: DataFrame) -> DataFrame:
    complaints = supplier.where(F.col("s_comment").contains("Complaints")).select("s_suppkey")
    return (
        partsupp.join(part, F.col("p_partkey") == F.col("ps_partkey"))
        .where((F.col("p_brand") != "Brand#45") & ~F.col("p_type").startswith("MEDIUM POLISHED"))
        .where(F.col("p_size").isin(49, 14, 23, 45, 19, 3, 36, 9, 1, 2, 5, 7))
        .join(complaints, F.col("ps_suppkey") == F.col("s_suppkey"), "left_anti")
        .groupBy("p_brand", "p_type", "p_size")
        .agg(F.countDistinct("ps_suppkey").alias("supplier_cnt"))
    )


@sf.stage
def q18_large_volume_customer(customer: DataFrame, orders: DataFrame, lineitem: DataFrame) -> DataFrame:
    """TPC-H's query joins line items twice (to find large orders, then to sum them); summed once here: a frame
    joined with one derived from itself fails on DuckDB (docs/engines.md)."""
    per_order = lineitem.groupBy("l_orderkey").agg(F.sum("l_quantity").alias("sum_quantity"))
    return (
        orders.join(per_order.where(F.col("sum_quantity") > 150), F.col("o_orderkey") == F.col("l_orderkey"))
        .join(customer, F.col("c_custkey") == F.col("o_custkey"))
        .select("c_name", "c_custkey", "o_orderkey", "o_orderdate", "o_totalprice", "sum_quantity")
    )


@sf.stage
def q22_global_sales_opportunity(customer: DataFrame, orders: DataFrame) -> DataFrame:
    codes = ["13", "31", "23", "29", "30", "18", "17"]
    coded = customer.withColumn("cntrycode", F.substring("c_phone", 1, 2)).where(F.col("cntrycode").isin(codes))
    average = coded.where(F.col("c_acctbal") > 0).agg(F.avg("c_acctbal").alias("average"))
    return (
        coded.crossJoin(average)
        .where(F.col("c_acctbal") > F.col("average"))
        .join(orders, F.col("c_custkey") == F.col("o_custkey"), "left_anti")
        .groupBy("cntrycode")
        .agg(F.count("*").alias("numcust"), F.sum("c_acctbal").alias("totacctbal"))
    )


@sf.stage
def orders_by_month(orders: DataFrame) -> DataFrame:
    """Date parts and casts: what a monthly report does."""
    return (
        orders.withColumn("year", F.year("o_orderdate"))
        .withColumn("month", F.month("o_orderdate"))
        .withColumn("quarter", F.quarter("o_orderdate"))
        .groupBy("year", "quarter", "month")
        .agg(
            F.count("*").alias("orders"),
            F.sum("o_totalprice").alias("total"),
            F.avg("o_totalprice").alias("average"),
            F.sum(F.col("o_totalprice").cast("double")).alias("total_double"),
            F.max(F.dayofmonth("o_orderdate")).alias("last_day"),
            F.sum(F.col("o_totalprice").cast("int")).alias("total_int"),
        )
        .withColumn("share", F.col("total") / F.sum("total").over(Window.partitionBy("year")))
    )


@sf.stage
def top_customers_per_nation(customer: DataFrame, orders: DataFrame) -> DataFrame:
    """Ranking windows over an aggregate."""
    spent = orders.groupBy("o_custkey").agg(F.sum("o_totalprice").alias("spent"))
    ranked = Window.partitionBy("c_nationkey").orderBy(F.desc("spent"), "c_custkey")
    return (
        customer.join(spent, F.col("c_custkey") == F.col("o_custkey"))
        .select(
            "c_nationkey",
            "c_custkey",
            "spent",
            F.row_number().over(ranked).alias("row"),
            F.rank().over(ranked).alias("rank"),
            F.dense_rank().over(ranked).alias("dense"),
            F.avg("spent").over(Window.partitionBy("c_nationkey")).alias("nation_average"),
            F.sum("spent").over(ranked).alias("running"),
        )
        .where(F.col("row") <= 3)
    )


@sf.pipeline
def tpch():
    return (
        q1_pricing_summary(lineitem),
        q3_shipping_priority(customer, orders, lineitem),
        q4_order_priority(orders, lineitem),
        q5_local_supplier_volume(customer, orders, lineitem, supplier, nation, region),
        q6_forecast_revenue(lineitem),
        q10_returned_items(customer, orders, lineitem, nation),
        q12_shipping_modes(orders, lineitem),
        q13_customer_distribution(customer, orders),
        q14_promotion_effect(lineitem, part),
        q16_parts_supplier_relationship(partsupp, part, supplier),
        q18_large_volume_customer(customer, orders, lineitem),
        q22_global_sales_opportunity(customer, orders),
        orders_by_month(orders),
        top_customers_per_nation(customer, orders),
    )
