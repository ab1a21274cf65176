#!/bin/bash
# Draws the plots of a benchmark run from the CSV files bench/run.sh wrote
# (gnuplot, Debian package gnuplot-nox), as SVG and PNG next to them:
#   read_latency.{svg,png}     read path: p50 and p99 latency against keys
#                              per request, fstore against its baselines
#                              (from read_latency.csv)
#   ingest_freshness.{svg,png} streaming ingestion: commit-to-visible
#                              freshness of every batch over the run
#                              (from ingest_freshness.csv, ingest.csv)
#   python_client.{svg,png}    Python client: get_many_matrix against
#                              psycopg2 rows (from python_client.csv)
# A plot whose CSV is absent is skipped.
# usage: bench/plot.sh [DIR]   (default bench/plots)
set -euo pipefail
dir=${1:-$(dirname "$0")/plots}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# the same look in both formats: $1 base name, $2 size, rest: the plot
draw() {
	local name=$1 size=$2
	shift 2
	for fmt in svg png; do
		if [ $fmt = svg ]; then
			term="set terminal svg size $size dynamic font 'Helvetica,12' background '#ffffff'"
		else
			term="set terminal pngcairo size $size font 'Helvetica,10'"
		fi
		gnuplot <<-EOF
			$term
			set termoption noenhanced
			set output '$dir/$name.$fmt'
			$*
		EOF
	done
	echo "wrote $dir/$name.svg, $dir/$name.png"
}

if [ -f "$dir/read_latency.csv" ]; then
	# one data file per mode, one client, ordered by keys
	modes=$(awk -F, 'NR > 1 && $3 == 1 && !seen[$1]++ { print $1 }' "$dir/read_latency.csv")
	for m in $modes; do
		awk -F, -v m="$m" 'NR > 1 && $1 == m && $3 == 1 { print $2, $4, $5, $6 }' \
			"$dir/read_latency.csv" | sort -n >"$tmp/$m.dat"
	done
	p50="" p99=""
	for m in $modes; do
		p50+="'$tmp/$m.dat' using 1:2 with linespoints title '$m', "
		p99+="'$tmp/$m.dat' using 1:4 with linespoints title '$m', "
	done
	draw read_latency "1100,480" "
		set multiplot layout 1,2 title 'Read path: 1,000,000 keys x 32 float4, warm, 1 client (libpq binary, prepared)'
		set logscale xy
		set grid
		set xlabel 'keys per request'
		set ylabel 'ms per request'
		set key top left
		set xtics (100, 1000, 5000)
		set xrange [70:7000]
		set title 'p50'
		plot ${p50%, }
		set title 'p99'
		plot ${p99%, }
		unset multiplot"
fi

if [ -f "$dir/ingest_freshness.csv" ]; then
	rate="" f50="" f99=""
	if [ -f "$dir/ingest.csv" ]; then
		rate=$(awk -F, '$1 == "freshness_rate_events_per_s" { print $2 }' "$dir/ingest.csv")
		f50=$(awk -F, '$1 == "freshness_p50_ms" { print $2 }' "$dir/ingest.csv")
		f99=$(awk -F, '$1 == "freshness_p99_ms" { print $2 }' "$dir/ingest.csv")
	fi
	lines=""
	if [ -n "$f50" ]; then
		lines=", $f50 with lines dt 2 lw 2 title 'p50 $f50 ms', $f99 with lines dt 3 lw 2 title 'p99 $f99 ms'"
	fi
	draw ingest_freshness "900,450" "
		set datafile separator ','
		set title 'Streaming ingestion: commit to visible in fs_get_many, per batch of 1,000 events${rate:+ (2 producers, $rate events/s)}'
		set grid
		set xlabel 'seconds into the run (batch COMMIT)'
		set ylabel 'freshness, ms'
		set yrange [0:*]
		set key outside bottom center horizontal
		plot '$dir/ingest_freshness.csv' using 1:2 skip 1 with points pt 7 ps 0.4 title 'batch'$lines"
fi

if [ -f "$dir/python_client.csv" ]; then
	awk -F, 'NR > 1 { printf "\"%s\\n%d%% missing\" %s %s\n", $2, $4 * 100, $5, $7 }' \
		"$dir/python_client.csv" >"$tmp/python.dat"
	draw python_client "900,450" "
		set title 'Python client: 1,000 keys x 32 float4 into a float32 numpy matrix'
		set style data histograms
		set style histogram clustered gap 1
		set style fill solid 0.8 border -1
		set boxwidth 0.9
		set grid ytics
		set ylabel 'ms per request'
		set yrange [0:*]
		set bmargin 4
		set key top right
		plot '$tmp/python.dat' using 2:xtic(1) title 'p50', '' using 3 title 'p99'"
fi
