package dev.triaged.peer;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;

/** Creates the peers' destination topics (one JVM for all, before the timed runs). */
public final class CreateTopics {
  private CreateTopics() {}

  public static void main(String[] args) throws Exception {
    if (args.length < 3) {
      System.err.println("usage: CreateTopics BOOTSTRAP PARTITIONS TOPIC...");
      System.exit(2);
    }
    int partitions = Integer.parseInt(args[1]);
    List<NewTopic> topics = new ArrayList<>();
    for (int i = 2; i < args.length; ++i) topics.add(new NewTopic(args[i], partitions, (short) 1));
    try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]))) {
      admin.createTopics(topics).all().get();
    }
  }
}
